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
from crawler.frontier.recheck import RecheckState

if TYPE_CHECKING:
    from collections.abc import Callable

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
    peers: int = 0
    """Other live workers: those whose heartbeat is fresh (``stale_after``)."""
    epoch: str | None = None
    """Redis's epoch now (None: Redis holds none)."""
    ended: bool = False
    """Whether the run asked about (``tick(..., run_id=)``) is recorded as ended."""

    def lost(self, epoch: str | None, run_id: str | None) -> str | None:
        """Why the state of run ``run_id`` (joined in ``epoch``) is gone, or None: Redis's
        epoch vanished or changed, or the run's record vanished without the run ending. A run
        recorded as ended (finished, or abandoned: then the epoch changed too) is not lost."""
        if self.ended:
            return None
        if epoch is not None and self.epoch != epoch:
            now = "none" if self.epoch is None else f"{self.epoch}"
            return (
                f"redis_state_lost: Redis's epoch was {epoch} when this worker joined run "
                f"{run_id} and is {now} now (FLUSHALL, or a restart without persistence)"
            )
        if run_id is not None and (self.run is None or self.run.id != run_id):
            return f"redis_state_lost: the record of run {run_id} vanished before the run ended"
        return None

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
        self.epoch: str | None = None
        """The epoch of the Redis state this worker's run lives in (None: not known yet)."""
        self._begin = client.register_script(lua.BEGIN)
        self._finish = client.register_script(lua.FINISH)
        self._outcome = client.register_script(lua.OUTCOME)
        self._request_run = client.register_script(lua.REQUEST_RUN)
        self._abandon = client.register_script(lua.ABANDON)

    async def current(self) -> Run | None:
        self.round_trips += 1
        raw = await self.client.get(self.keys.run)
        return Run.from_json(raw) if raw else None

    async def begin(
        self, args: dict[str, Any], seeds: list[Push], max_articles: int = 0
    ) -> tuple[Run, bool]:
        """The run to work on, and whether this call began it (and queued ``seeds``); the
        epoch of Redis's state becomes this worker's (``epoch``)."""
        run = Run(uuid.uuid4().hex[:16], datetime.now(UTC).isoformat(), args)
        k = self.keys
        self.round_trips += 1
        began, raw, epoch = await self._begin(
            keys=[
                k.run, k.pending, k.delayed, k.seen_articles, k.seen_hubs, k.run_articles,
                k.run_seen_articles, k.run_links, k.awaiting_articles, k.hints,
                k.run_failed_articles, k.epoch, k.run_stats, k.versions,
                k.run_announced_articles, k.run_rechecked, k.run_tally,
            ],
            args=[run.to_json(), uuid.uuid4().hex, max_articles, *pushes_args(seeds)],
        )  # fmt: skip
        if raw is None:  # the other run ended between the two steps: try again
            return await self.begin(args, seeds, max_articles)
        self.epoch = _text(epoch) if epoch else None
        return Run.from_json(raw), bool(int(began))

    async def finish(self, run: Run) -> dict[str, int] | None:
        """End the run if it is done; the counters for the one caller that ended it."""
        k = self.keys
        self.round_trips += 1
        raw = await self._finish(
            keys=[
                k.run, k.pending, k.leased, k.delayed, k.seen_hubs, k.run_articles,
                k.run_stats, k.run_seen_articles, k.run_links, k.awaiting_articles, k.hints,
                k.run_outcomes, k.runs_ended, k.run_failed_articles, k.run_announced_articles,
                k.run_rechecked, k.run_tally, k.start_urls, k.feed_claimed, k.pending_plain,
            ],
            args=[run.id],
        )  # fmt: skip
        if not raw or int(raw[0]) != 1:
            return None
        flat = raw[1:]
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def abandon(self, run_id: str = "") -> tuple[Run, int, dict[str, int]] | None:
        """Abandon the open run (``run_id``: only if it is that one) whatever it still has to
        do (``lua.ABANDON``): the run, how many requests it left (moved to ``abandoned``, or
        as plain bits to ``abandoned_articles``) and
        its counters; None if there is no such open run."""
        k = self.keys
        self.round_trips += 1
        raw = await self._abandon(
            keys=[
                k.run, k.pending, k.leased, k.delayed, k.seen_hubs, k.run_articles,
                k.run_stats, k.run_seen_articles, k.run_announced_articles, k.run_outcomes,
                k.runs_ended, k.run_failed_articles, k.epoch, k.abandoned, k.run_links,
                k.awaiting_articles, k.hints, k.run_rechecked, k.run_tally, k.pending_plain,
                k.pending_plain_sections, k.abandoned_articles,
            ],
            args=[run_id, uuid.uuid4().hex],
        )  # fmt: skip
        if not raw or int(raw[0]) != 1:
            return None
        flat = raw[3:]
        stats = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Run.from_json(raw[1]), int(raw[2]), stats

    async def forget_abandoned(self, article_id: Callable[[bytes], int | None]) -> int:
        """Clear the seen bits of the articles abandoned runs left queued (``article_id``:
        a queue member's article id, None if it is no article), so later runs may queue them
        again; the number of articles cleared. The plain requests' bits go at once: their
        seen bits are cleared with ``BITOP`` (seen ^= seen & abandoned)."""
        k = self.keys
        self.round_trips += 1
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.bitop("AND", k.abandoned_articles, k.abandoned_articles, k.seen_articles)
            pipe.bitcount(k.abandoned_articles)
            pipe.bitop("XOR", k.seen_articles, k.seen_articles, k.abandoned_articles)
            pipe.delete(k.abandoned_articles)
            cleared = int((await pipe.execute())[1])
        while True:
            self.round_trips += 1
            members: Any = await self.client.zrange(k.abandoned, 0, 499)
            if not members:
                return cleared
            ids = [aid for aid in map(article_id, members) if aid]
            async with self.client.pipeline(transaction=True) as pipe:
                for aid in ids:
                    pipe.setbit(k.seen_articles, aid, 0)
                pipe.zrem(k.abandoned, *members)
                self.round_trips += 1
                await pipe.execute()
            cleared += len(ids)

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
        run_id: str | None = None,
    ) -> tuple[ClusterState, bytes | None]:
        """One round trip for a worker's periodic business: its heartbeat (unless
        ``unflushed`` is None), its counters added to the run's, the cluster's state (with
        Redis's epoch, and whether run ``run_id`` is recorded as ended), and
        (``snapshot``) a copy of the seen-articles bitmap."""
        k = self.keys
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            if unflushed is not None:
                about = self.describe() if self.describe is not None else {}
                beat = json.dumps({**about, "unflushed": unflushed, "ts": time.time()})
                pipe.hset(k.workers, self.worker_id, beat)
            for name, value in deltas.items():
                pipe.hincrby(k.run_stats, name, value)
            first = len(pipe.command_stack)
            pipe.get(k.run)
            pipe.zcard(k.pending)
            pipe.zcard(k.leased)
            pipe.zcard(k.delayed)
            pipe.hgetall(k.workers)
            pipe.get(k.epoch)
            pipe.hexists(k.run_outcomes, run_id or "")
            pipe.hget(k.pending_plain, "total")
            if snapshot:
                pipe.get(k.seen_articles)
            results = await pipe.execute()
        raw_run, pending, leased, delayed, workers, epoch, ended = results[first : first + 7]
        pending = int(pending) + int(results[first + 7] or 0)
        bitmap = results[first + 8] if snapshot else None
        peers, others = await self._others(workers)
        run = Run.from_json(raw_run) if raw_run else None
        state = ClusterState(
            run, int(pending), int(leased), int(delayed), others, peers,
            epoch=_text(epoch) if epoch else None, ended=bool(run_id) and bool(ended),
        )  # fmt: skip
        return state, (bytes(bitmap) if bitmap else b"") if snapshot else None

    async def _others(self, workers: dict[bytes, bytes]) -> tuple[int, int]:
        """How many other live workers there are, and their unflushed work; stale heartbeats
        are dropped."""
        now = time.time()
        stale = []
        peers = unflushed = 0
        for worker, raw in workers.items():
            name = _text(worker)
            if name == self.worker_id:
                continue
            beat = json.loads(raw)
            if now - float(beat["ts"]) > self.stale_after:
                stale.append(name)
                continue
            peers += 1
            unflushed += int(beat.get("unflushed", 0))
        if stale:
            self.round_trips += 1
            await self.client.hdel(self.keys.workers, *stale)
        return peers, unflushed

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
