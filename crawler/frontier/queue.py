"""The shared request queue in Redis, with leases, retries, dead letters and a rate budget.

Every operation is one atomic script call (see ``lua``) on an asyncio Redis client, so no
worker ever blocks the reactor on Redis and no two workers race between a read and a write.

- ``flush`` queues new requests (deduplicated: article ids in a bitmap kept across runs, hub
  fingerprints per run), acknowledges finished ones, hands back unstarted leases and records
  dead letters, in that order and in one call.
- ``pop`` leases requests, keeping the cluster's requests at the site under
  ``CRAWL_CONCURRENCY``; it first returns expired leases (of dead workers) and due retries to
  the queue.
- ``take_slot`` paces requests at send time: one slot every ``1/CRAWL_RATE`` seconds (or the
  robots.txt Crawl-delay) for the whole cluster, none during a ``Retry-After`` pause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import Redis as SyncRedis

from crawler.frontier import lua
from crawler.frontier.keys import FrontierKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Push:
    """A request to queue: its member, and how to deduplicate and order it."""

    member: bytes
    priority: int = 0
    article_id: int = 0
    fingerprint: str = ""
    unfiltered: bool = False
    """Queue it whatever was queued before (a redirect, a retry, a replay)."""
    refresh: bool = False
    """An article to fetch again (recent, or changed): at most once a run."""
    delay_ms: int = 0

    def args(self) -> list[Any]:
        return [
            self.member,
            self.priority,
            self.article_id,
            self.fingerprint,
            "1" if self.unfiltered else ("r" if self.refresh else "0"),
            self.delay_ms,
        ]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A request that kept failing: kept under its URL with the reason."""

    url: str
    member: bytes
    reason: str
    attempts: int
    article_id: int = 0
    lease: bytes = b""
    """The leased request that ended as this dead letter (its lease ends with it), if any."""

    def record(self, at_ms: int) -> str:
        return json.dumps(
            {
                "url": self.url,
                "request": self.member.decode(),
                "reason": self.reason,
                "attempts": self.attempts,
                "at_ms": at_ms,
            }
        )


@dataclass(frozen=True, slots=True)
class FlushResult:
    queued: int
    filtered: int
    capped: int
    acked: int


@dataclass(frozen=True, slots=True)
class PopResult:
    now_ms: int
    reaped: int
    leases: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Send times reserved for one worker (Redis clock, ms), or when to ask again."""

    now_ms: int
    retry_at_ms: int
    times_ms: list[int]


@dataclass(frozen=True, slots=True)
class Budget:
    """The site's request budget, shared by every worker."""

    interval_ms: float
    """Milliseconds between two requests to the site (1000 / CRAWL_RATE, with a margin)."""
    per_second: int
    """Requests in any one second, at most (CRAWL_RATE, rounded down, at least 1)."""
    max_fetching: int
    """Requests at the site (or about to be) at once, across the cluster."""
    lease_ms: int
    """How long a lease lasts without renewal; a dead worker's requests return after it."""
    stale_ms: int = 5000
    """A worker's fetching count older than this is not counted (it died)."""


def pushes_args(pushes: list[Push]) -> list[Any]:
    flat: list[Any] = [len(pushes)]
    for push in pushes:
        flat.extend(push.args())
    return flat


class RedisFrontier:
    """The queue operations of one worker; counts its round trips to Redis."""

    def __init__(self, client: Redis, keys: FrontierKeys) -> None:
        self.client = client
        self.keys = keys
        self.round_trips = 0
        self._flush = client.register_script(lua.FLUSH)
        self._pop = client.register_script(lua.POP)
        self._renew = client.register_script(lua.RENEW)
        self._pause = client.register_script(lua.PAUSE)
        self._slot = client.register_script(lua.SLOT)

    def flush_call(
        self,
        pushes: list[Push],
        acks: list[bytes],
        releases: list[bytes] | None = None,
        dead: list[DeadLetter] | None = None,
        *,
        max_articles: int = 0,
        now_ms: int = 0,
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of one ``lua.FLUSH`` call."""
        releases = releases or []
        dead = dead or []
        args: list[Any] = [max_articles, *pushes_args(pushes), len(acks), *acks]
        args += [len(releases), *releases, len(dead)]
        for letter in dead:
            args += [letter.url, letter.record(now_ms), letter.article_id, letter.lease]
        k = self.keys
        keys = [k.pending, k.delayed, k.seen_articles, k.seen_hubs, k.run_articles]
        keys += [k.run_seen_articles, k.leased, k.dead, k.run_tally]
        return keys, args

    async def flush(
        self,
        pushes: list[Push],
        acks: list[bytes],
        releases: list[bytes] | None = None,
        dead: list[DeadLetter] | None = None,
        *,
        max_articles: int = 0,
        now_ms: int = 0,
    ) -> FlushResult:
        keys, args = self.flush_call(
            pushes, acks, releases, dead, max_articles=max_articles, now_ms=now_ms
        )
        self.round_trips += 1
        queued, filtered, capped, acked = await self._flush(keys=keys, args=args)
        return FlushResult(int(queued), int(filtered), int(capped), int(acked))

    def release_blocking(self, url: str, members: list[bytes]) -> int:
        """Hand ``members`` back to the queue with a blocking client of its own: for a worker
        whose event loop is gone (a forced stop). Returns how many were handed back."""
        if not members:
            return 0
        keys, args = self.flush_call([], [], members)
        client = SyncRedis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.eval(lua.FLUSH, len(keys), *keys, *args)
        finally:
            client.close()
        return len(members)

    async def pop(self, k: int, budget: Budget, worker: str, fetching: int) -> PopResult:
        """Lease up to ``k`` requests for ``worker``, which has ``fetching`` requests at (or
        about to be at) the site."""
        keys = self.keys
        self.round_trips += 1
        raw = await self._pop(
            keys=[keys.pending, keys.leased, keys.delayed, keys.fetching],
            args=[k, budget.lease_ms, budget.max_fetching, worker, fetching, budget.stale_ms],
        )
        return PopResult(int(raw[0]), int(raw[1]), [bytes(m) for m in raw[2:]])

    async def reserve_sends(
        self, budget: Budget, sender: str, k: int, horizon_ms: int = 1000
    ) -> Reservation:
        """Reserve up to ``k`` send times of the cluster's budget (see ``lua.SLOT``)."""
        keys = self.keys
        self.round_trips += 1
        raw = await self._slot(
            keys=[keys.sent, keys.pause_until, keys.min_interval],
            args=[budget.interval_ms, budget.per_second, 1000, sender, k, horizon_ms],
        )
        return Reservation(int(raw[0]), int(raw[1]), [int(t) for t in raw[2:]])

    async def renew(self, members: list[bytes], lease_ms: int) -> int:
        if not members:
            return 0
        self.round_trips += 1
        return int(await self._renew(keys=[self.keys.leased], args=[lease_ms, *members]))

    async def pause(self, seconds: float) -> None:
        """No worker fetches anything for ``seconds`` (a 429/503 ``Retry-After``)."""
        self.round_trips += 1
        await self._pause(keys=[self.keys.pause_until], args=[int(seconds * 1000)])

    async def set_min_interval(self, seconds: float) -> None:
        """Space requests at least ``seconds`` apart (robots.txt Crawl-delay)."""
        self.round_trips += 1
        await self.client.set(self.keys.min_interval, int(seconds * 1000))

    async def counts(self) -> tuple[int, int, int]:
        """(pending, leased, delayed) requests in the whole cluster."""
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.pending)
            pipe.zcard(self.keys.leased)
            pipe.zcard(self.keys.delayed)
            pending, leased, delayed = await pipe.execute()
        return int(pending), int(leased), int(delayed)

    async def dead_letters(self) -> dict[str, dict[str, Any]]:
        self.round_trips += 1
        raw = await self.client.hgetall(self.keys.dead)
        return {_text(k): json.loads(v) for k, v in raw.items()}

    async def replay(self, urls: list[str] | None = None) -> int:
        """Queue dead letters again (all, or those of ``urls``); returns how many."""
        letters = await self.dead_letters()
        chosen = [v for u, v in letters.items() if urls is None or u in urls]
        if not chosen:
            return 0
        pushes = [
            Push(
                str(v["request"]).encode(),
                priority=int(json.loads(v["request"]).get("priority", 0)),
                unfiltered=True,
            )
            for v in chosen
        ]
        await self.flush(pushes, [])
        self.round_trips += 1
        await self.client.hdel(self.keys.dead, *[str(v["url"]) for v in chosen])
        return len(chosen)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
