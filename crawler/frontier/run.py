"""Run coordination in Redis: one run at a time, seeded once, finished once.

A run begins when a worker finds none going on: one script call creates the run record and
queues its seeds together, so no other worker can see a run without its seeds. The others
join it and adopt its arguments. Workers publish heartbeats with the work they hold that Redis
does not know of yet (requests and acknowledgements not flushed). The run is finished when
nothing is pending, leased or delayed and no live worker holds unflushed work; the one worker
whose ``finish`` call succeeds ends it, which drops the run's hub seen-set (so the next run
walks the hubs again) and hands back the counters the workers added up.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler import defaults
from crawler.frontier import lua
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Push, pushes_args

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
        self.describe: Callable[[], dict[str, Any]] | None = None
        """What this worker's heartbeat says about it besides its unflushed work
        (``progress.WorkerBeat.describe``)."""
        self.round_trips = 0
        self._begin = client.register_script(lua.BEGIN)
        self._finish = client.register_script(lua.FINISH)
        self._marks = client.register_script(lua.MARKS)
        self._outcome = client.register_script(lua.OUTCOME)
        self._request_run = client.register_script(lua.REQUEST_RUN)

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
                k.run_tally,
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
                k.run_stats, k.run_seen_articles, k.run_marks, k.marks,
                k.run_outcomes, k.runs_ended, k.run_tally, k.start_urls, k.feed_claimed,
            ],
            args=[run.id],
        )  # fmt: skip
        if not raw or int(raw[0]) != 1:
            return None
        flat = raw[1:]
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def publish_outcome(self, run: Run, outcome: dict[str, Any]) -> None:
        """Record how ``run`` ended (``outcome``: JSON-able, at least ``outcome``, ``reasons``)
        for the other workers, the scheduler and ``scrapy status``."""
        record = {"id": run.id, "started_at": run.started_at, "args": run.args, **outcome}
        self.round_trips += 1
        await self._outcome(
            keys=[self.keys.run_outcomes, self.keys.runs_ended],
            args=[run.id, json.dumps(record, default=str), defaults.RUN_OUTCOMES_KEPT],
        )

    async def outcome_of(self, run_id: str) -> dict[str, Any] | None:
        """How run ``run_id`` ended: None if it is not known to have ended; ``{"outcome":
        None}`` while the worker that ended it has not published it yet."""
        self.round_trips += 1
        raw = await self.client.hget(self.keys.run_outcomes, run_id)
        return dict(json.loads(raw)) if raw else None

    async def wait_outcome(
        self, run_id: str, timeout: float, poll: float = 0.2
    ) -> dict[str, Any] | None:
        """The published outcome of ``run_id``, waiting up to ``timeout`` for it; None if it
        never came."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.outcome_of(run_id)
            if found is not None and found.get("outcome") is not None:
                return found
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(poll)

    async def recent_outcomes(
        self, count: int = defaults.RUN_OUTCOMES_KEPT
    ) -> list[dict[str, Any]]:
        """The outcomes of the last ``count`` runs that ended, oldest first (each with its
        ``ended_ms``)."""
        k = self.keys
        self.round_trips += 1
        ended: Any = await self.client.zrange(k.runs_ended, -count, -1, withscores=True)
        if not ended:
            return []
        raw = await self.client.hmget(k.run_outcomes, [member for member, _ in ended])
        return [
            {**json.loads(value), "ended_ms": int(score)}
            for (_, score), value in zip(ended, raw, strict=True)
            if value
        ]

    async def marks(self) -> dict[str, int]:
        """The marks kept from earlier successful runs."""
        self.round_trips += 1
        raw = await self.client.hgetall(self.keys.marks)
        return {_text(k): int(v) for k, v in raw.items()}

    async def leave(self) -> None:
        self.round_trips += 1
        await self.client.hdel(self.keys.workers, self.worker_id)

    async def state(self) -> ClusterState:
        """The run, the queue's sizes and the other live workers' unflushed work."""
        state, _ = await self.tick(None, {}, {})
        return state

    async def tick(
        self,
        unflushed: int | None,
        deltas: dict[str, int],
        marks: dict[str, int],
        *,
        snapshot: bool = False,
    ) -> tuple[ClusterState, bytes | None]:
        """One round trip for a worker's periodic business: its heartbeat (unless
        ``unflushed`` is None), its counters and marks added to the run's, the cluster's
        state, and (``snapshot``) a copy of the seen-articles bitmap."""
        k = self.keys
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            if unflushed is not None:
                about = self.describe() if self.describe is not None else {}
                beat = json.dumps({**about, "unflushed": unflushed, "ts": time.time()})
                pipe.hset(k.workers, self.worker_id, beat)
            for name, value in deltas.items():
                pipe.hincrby(k.run_stats, name, value)
            if marks:
                flat = [value for item in marks.items() for value in item]
                await self._marks(keys=[k.run_marks], args=flat, client=pipe)
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

    async def request_scheduled_run(self, due: datetime, args: dict[str, Any]) -> str:
        """Ask for the run due at ``due`` unless that due time was handled or a run is going
        or requested, in one script call (``lua.REQUEST_RUN``): ``started``, ``waiting`` or
        ``idle``."""
        k = self.keys
        self.round_trips += 1
        action = await self._request_run(
            keys=[k.schedule_state, k.run, k.run_requests],
            args=[int(due.timestamp() * 1000), due.isoformat(), json.dumps(args)],
        )
        return _text(action)

    async def requested_runs(self) -> int:
        self.round_trips += 1
        return int(await self.client.llen(self.keys.run_requests))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
