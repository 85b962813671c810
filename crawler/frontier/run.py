"""Run coordination in Redis: one run at a time, seeded once, finished once.

A run begins when a worker finds none going on: one script call creates the run record and
queues its seeds together, so no other worker can see a run without its seeds. The others
join it and adopt its arguments. Workers publish heartbeats with the work they hold that Redis
does not know of yet (requests and acknowledgements not flushed). The run is finished when
nothing is pending, leased or delayed and no live worker holds unflushed work; the one worker
whose ``finish`` call succeeds ends it, which drops the run's hub seen-set (so the next run
walks the hubs again) and hands back the counters the workers added up; it then moves the
re-check's state by the run's findings (``recheck``).
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

from crawler.frontier import lua
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Push, pushes_args
from crawler.frontier.recheck import RecheckState

if TYPE_CHECKING:
    from redis.asyncio import Redis


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


@dataclass(frozen=True, slots=True)
class ClusterState:
    """One look at the whole cluster."""

    run: Run | None
    pending: int
    leased: int
    delayed: int
    others_unflushed: int

    @property
    def idle(self) -> bool:
        """Nothing to fetch, nothing being fetched, nothing waiting to be written."""
        return self.pending + self.leased + self.delayed + self.others_unflushed == 0


class RunCoordinator:
    """One worker's (or the scheduler's) view of the cluster's runs."""

    def __init__(
        self,
        client: Redis,
        keys: FrontierKeys,
        worker_id: str | None = None,
        stale_after: float = 30.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.stale_after = stale_after
        self.round_trips = 0
        self._begin = client.register_script(lua.BEGIN)
        self._finish = client.register_script(lua.FINISH)

    async def current(self) -> Run | None:
        self.round_trips += 1
        raw = await self.client.get(self.keys.run)
        return Run.from_json(raw) if raw else None

    async def begin(
        self, args: dict[str, Any], seeds: list[Push], max_articles: int = 0
    ) -> tuple[Run, bool]:
        """The run to work on, and whether this call began it (and queued ``seeds``)."""
        run = Run(uuid.uuid4().hex[:16], datetime.now(UTC).isoformat(), args)
        k = self.keys
        self.round_trips += 1
        began, raw = await self._begin(
            keys=[
                k.run,
                k.pending,
                k.delayed,
                k.seen_articles,
                k.seen_hubs,
                k.run_articles,
                k.run_seen_articles,
                k.awaiting_articles,
                k.hints,
                k.versions,
                k.run_announced_articles,
                k.run_rechecked,
            ],
            args=[run.to_json(), max_articles, *pushes_args(seeds)],
        )
        if raw is None:  # the other run ended between the two steps: try again
            return await self.begin(args, seeds, max_articles)
        return Run.from_json(raw), bool(int(began))

    async def finish(self, run: Run) -> dict[str, int] | None:
        """End the run if it is done; the counters for the one caller that ended it."""
        k = self.keys
        self.round_trips += 1
        raw = await self._finish(
            keys=[
                k.run, k.pending, k.leased, k.delayed, k.seen_hubs, k.run_articles,
                k.run_stats, k.run_seen_articles, k.awaiting_articles, k.hints,
                k.run_announced_articles, k.run_rechecked,
            ],
            args=[run.id],
        )  # fmt: skip
        if not raw or int(raw[0]) != 1:
            return None
        flat = raw[1:]
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def recheck_state(self) -> tuple[RecheckState, int]:
        """The re-check's state kept from earlier runs, and how many articles are known."""
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.recheck)
            pipe.bitcount(self.keys.seen_articles)
            raw, known = await pipe.execute()
        return RecheckState.from_redis(raw), int(known)

    async def keep_recheck_state(self, state: RecheckState) -> None:
        self.round_trips += 1
        await self.client.hset(self.keys.recheck, items=list(state.to_redis()))

    async def leave(self) -> None:
        self.round_trips += 1
        await self.client.hdel(self.keys.workers, self.worker_id)

    async def state(self) -> ClusterState:
        """The run, the queue's sizes and the other live workers' unflushed work."""
        state, _ = await self.tick(None, {})
        return state

    async def tick(
        self,
        unflushed: int | None,
        deltas: dict[str, int],
        *,
        snapshot: bool = False,
    ) -> tuple[ClusterState, bytes | None]:
        """One round trip for a worker's periodic business: its heartbeat (unless
        ``unflushed`` is None), its counters added to the run's, the cluster's state, and
        (``snapshot``) a copy of the seen-articles bitmap."""
        k = self.keys
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            if unflushed is not None:
                beat = json.dumps({"unflushed": unflushed, "ts": time.time()})
                pipe.hset(k.workers, self.worker_id, beat)
            for name, value in deltas.items():
                pipe.hincrby(k.run_stats, name, value)
            pipe.get(k.run)
            pipe.zcard(k.pending)
            pipe.zcard(k.leased)
            pipe.zcard(k.delayed)
            pipe.hgetall(k.workers)
            if snapshot:
                pipe.get(k.seen_articles)
            results = await pipe.execute()
        bitmap = results.pop() if snapshot else None
        raw_run, pending, leased, delayed, workers = results[-5:]
        now = time.time()
        stale = []
        unflushed = 0
        for worker, raw in workers.items():
            name = _text(worker)
            if name == self.worker_id:
                continue
            beat = json.loads(raw)
            if now - float(beat["ts"]) > self.stale_after:
                stale.append(name)
                continue
            unflushed += int(beat.get("unflushed", 0))
        if stale:
            self.round_trips += 1
            await self.client.hdel(k.workers, *stale)
        run = Run.from_json(raw_run) if raw_run else None
        state = ClusterState(run, int(pending), int(leased), int(delayed), unflushed)
        return state, (bytes(bitmap) if bitmap else b"") if snapshot else None

    async def heartbeat_age(self, host: str) -> float | None:
        """Seconds since the freshest heartbeat of a worker on ``host``, None if none."""
        self.round_trips += 1
        workers = await self.client.hgetall(self.keys.workers)
        ages = [
            time.time() - float(json.loads(raw)["ts"])
            for worker, raw in workers.items()
            if _text(worker).split(":", 1)[0] == host
        ]
        return min(ages) if ages else None

    async def pop_run_request(self) -> dict[str, Any] | None:
        """A run asked for by ``scrapy schedule`` (worker mode), if any."""
        self.round_trips += 1
        raw = await self.client.lpop(self.keys.run_requests)
        if not isinstance(raw, bytes | str):
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}

    async def request_run(self, args: dict[str, Any]) -> None:
        self.round_trips += 1
        await self.client.rpush(self.keys.run_requests, json.dumps(args))

    async def requested_runs(self) -> int:
        self.round_trips += 1
        return int(await self.client.llen(self.keys.run_requests))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
