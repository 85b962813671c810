"""Run coordination in Redis: one run at a time, seeded once, finished once.

A run starts when a worker finds no run going on (``SET NX``): that worker seeds it, the
others join. Each worker publishes a heartbeat with how many requests it has in flight. The
run is finished when the queue is empty and no live worker has anything in flight; the worker
that sees it first ends the run (a compare-and-delete in Lua), which drops the run's hub seen-set
so the next run walks the hubs again.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.frontier.keys import FrontierKeys

if TYPE_CHECKING:
    import redis

# KEYS: run, seen_hubs, run_articles. ARGV: run id. Ends the run if it is still that one.
_FINISH = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if cjson.decode(raw)['id'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Run:
    """A crawl run: its id, when it started and the arguments it was seeded with."""

    id: str
    started_at: str
    args: dict[str, Any]

    @classmethod
    def from_json(cls, raw: bytes | str) -> Run:
        data = json.loads(raw)
        return cls(str(data["id"]), str(data["started_at"]), dict(data.get("args") or {}))

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "started_at": self.started_at, "args": self.args})


class RunCoordinator:
    """One worker's view of the cluster's run state."""

    def __init__(
        self,
        server: redis.Redis,
        keys: FrontierKeys,
        worker_id: str | None = None,
        stale_after: float = 30.0,
    ) -> None:
        self.server = server
        self.keys = keys
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.stale_after = stale_after
        self._finish = server.register_script(_FINISH)

    def current(self) -> Run | None:
        raw = self.server.get(self.keys.run)
        return Run.from_json(raw) if raw else None

    def begin(self, args: dict[str, Any]) -> tuple[Run, bool]:
        """The run to work on, and whether this worker started it (and so seeds it)."""
        run = Run(uuid.uuid4().hex[:16], datetime.now(UTC).isoformat(), args)
        if self.server.set(self.keys.run, run.to_json(), nx=True):
            return run, True
        existing = self.current()
        if existing is None:  # ended between our SET and GET: try once more
            return self.begin(args)
        return existing, False

    def finish(self, run: Run) -> bool:
        """End the run if it is still current; True for the one worker that ended it."""
        return bool(
            self._finish(
                keys=[self.keys.run, self.keys.seen_hubs, self.keys.run_articles], args=[run.id]
            )
        )

    def heartbeat(self, busy: int) -> None:
        beat = json.dumps({"busy": busy, "ts": time.time()})
        self.server.hset(self.keys.workers, self.worker_id, beat)

    def leave(self) -> None:
        self.server.hdel(self.keys.workers, self.worker_id)

    def heartbeat_age(self, host: str) -> float | None:
        """Seconds since the freshest heartbeat of a worker on ``host``, None if none."""
        ages = [
            time.time() - float(json.loads(raw)["ts"])
            for worker, raw in self.server.hgetall(self.keys.workers).items()
            if _text(worker).split(":", 1)[0] == host
        ]
        return min(ages) if ages else None

    def pending(self) -> int:
        return int(self.server.zcard(self.keys.requests))

    def others_busy(self) -> int:
        """Requests in flight at the other live workers; stale heartbeats are dropped."""
        now = time.time()
        busy = 0
        for worker, raw in self.server.hgetall(self.keys.workers).items():
            name = _text(worker)
            if name == self.worker_id:
                continue
            beat = json.loads(raw)
            if now - float(beat["ts"]) > self.stale_after:
                self.server.hdel(self.keys.workers, name)
                continue
            busy += int(beat["busy"])
        return busy

    def cluster_idle(self) -> bool:
        return self.pending() == 0 and self.others_busy() == 0

    def pop_run_request(self) -> dict[str, Any] | None:
        """A run asked for by ``scrapy schedule`` (worker mode), if any."""
        raw = self.server.lpop(self.keys.run_requests)
        if not isinstance(raw, bytes | str):
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}

    def request_run(self, args: dict[str, Any]) -> None:
        self.server.rpush(self.keys.run_requests, json.dumps(args))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
