"""The shared request queue in Redis, with leases, retries, dead letters and a rate budget.

Every operation is one atomic script call (see ``lua``) on an asyncio Redis client, so no
worker ever blocks the reactor on Redis and no two workers race between a read and a write.

- ``flush`` queues new requests (deduplicated: article ids in a bitmap kept across runs, hub
  fingerprints per run; a feed's sighting of a known article by its version, ``versions``),
  keeps the feed hints they and dropped requests carry, writes the versions of stored articles,
  acknowledges finished ones, hands back unstarted leases and records dead letters, in that
  order and in one call.
- ``pop`` leases requests, each with its article's feed hint (a lease is not a request at the
  site: ``site`` bounds those); it first returns expired leases (of dead workers) and due
  retries to the queue, and with nothing to lease says when the next of them comes due.
- ``site`` lets requests go to the site: at most ``CRAWL_CONCURRENCY`` of the cluster there at
  once, each at a send time one every ``1/CRAWL_RATE`` seconds (or the robots.txt
  Crawl-delay) for the whole cluster, none during a ``Retry-After`` pause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis import Redis as SyncRedis

from crawler.frontier import lua
from crawler.frontier.keys import FrontierKeys

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

    from crawler.frontier.plain import PlainForm
    from crawler.frontier.versions import VersionRecord


class StateLost(RuntimeError):
    """Redis lost the frontier's state (its epoch is gone or changed) since this worker
    joined its run: what it was about to write belongs to a run that no longer exists."""


@dataclass(frozen=True, slots=True)
class Push:
    """A request to queue: its member, and how to deduplicate and order it."""

    member: bytes
    priority: int = 0
    article_id: int = 0
    fingerprint: str = ""
    unfiltered: bool = False
    """Queue it whatever was queued before (a redirect, a retry, a replay)."""
    sighting: str = ""
    """A feed entry's sighting of the article (``versions.Sighting.mode``): queued when the
    article is new, changed or due for a re-check, at most once a run."""
    refresh: bool = False
    """An article fed on ``start_urls`` (``crawler.frontier.feed``): fetched even if stored,
    at most once a run."""
    delay_ms: int = 0
    via: str = ""
    """The page (not a listing) the link was found on: it counts against the run's cap of such
    links (``TASS_MAX_RUN_LINKS``). Kept here only, to name the page of a link cut."""
    hint: bytes = b""
    """What a feed said of the article (``crawler.pages.hints``), kept by its id while it
    awaits its fetch, whether or not this request is queued."""

    def mode(self) -> str:
        """How the scripts deduplicate it: ``1`` unfiltered, a feed's sighting (``v,...``),
        ``r`` a refresh, ``p`` a link found on a page (capped per run), ``0`` otherwise."""
        if self.unfiltered:
            return "1"
        if self.sighting:
            return self.sighting
        if self.refresh:
            return "r"
        return "p" if self.via else "0"

    def args(self) -> list[Any]:
        return [self.member, self.priority, self.article_id, self.fingerprint, self.mode(),
                self.delay_ms, self.hint]  # fmt: skip

    @classmethod
    def again(cls, member: str) -> Push:
        """A kept request queued again as it was (a dead letter, a pending retry): at its
        member's priority, whatever was queued before."""
        priority = int(json.loads(member).get("priority", 0))
        return cls(member.encode(), priority=priority, unfiltered=True)


@dataclass(frozen=True, slots=True)
class Hint:
    """The feed hint of a request dropped before the queue (its article already known)."""

    article_id: int
    hint: bytes


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
    links: int = 0
    """Links found on pages (``Push.via``) among those queued."""
    hints_kept: int = 0
    """Feed hints kept (their article awaits its fetch); the others had no use."""
    links_cut: list[Push] = field(default_factory=list)
    """Links found on pages refused because the run's ``TASS_MAX_RUN_LINKS`` was reached."""
    counts: dict[str, int] = field(default_factory=dict)
    """By name: the sightings' verdicts (``changes/new``, ``changes/changed``, ...) and the
    re-checks' findings (``recheck/sampled``, ``recheck/sample_edits``, ...)."""


@dataclass(frozen=True, slots=True)
class PopResult:
    now_ms: int
    reaped: int
    leases: list[bytes] = field(default_factory=list)
    hints: list[bytes] = field(default_factory=list)
    """The feed hint of each lease, in the same order (``b""``: none)."""
    due_ms: int = 0
    """With nothing leased: when the first delayed retry or lease comes due (Redis clock, ms;
    0: nothing waits there)."""


@dataclass(frozen=True, slots=True)
class SiteAnswer:
    """What one ``lua.SITE`` call gave a worker (times on Redis's clock, ms)."""

    now_ms: int
    retry_at_ms: int
    """When to ask again for send times, if none was reserved (0: none was asked for)."""
    line: int
    """Requests of the cluster waiting for a place, after this call."""
    places: list[int]
    """For each token that asked: -1 let in, else its place in the line."""
    times_ms: list[int]
    """The send times reserved."""


@dataclass(frozen=True, slots=True)
class Budget:
    """The site's request budget, shared by every worker."""

    interval_ms: float
    """Milliseconds between two requests to the site (1000 / CRAWL_RATE, with a margin)."""
    per_second: int
    """Requests in any one second, at most (CRAWL_RATE, rounded down, at least 1)."""
    concurrency: int
    """Requests at the site at once, across the cluster (leases waiting in a worker are not
    at the site: they do not count)."""
    lease_ms: int
    """How long a lease lasts without renewal; a dead worker's requests return after it."""
    stale_ms: int = 5000
    """A request waiting to go to the site that has not asked again for this long is dropped
    from the line (its worker died)."""
    site_ttl_ms: int = 60_000
    """A request at the site counts for at most this long (past the download timeout), so a
    dead worker's requests stop counting."""


def pushes_args(pushes: list[Push]) -> list[Any]:
    flat: list[Any] = [len(pushes)]
    for push in pushes:
        flat.extend(push.args())
    return flat


class RedisFrontier:
    """The queue operations of one worker; counts its round trips to Redis. With a ``plain``
    form, the plain article requests it queues are kept as bits (``crawler.frontier.plain``);
    without one, as members (whatever the form, POP leases both)."""

    def __init__(self, client: Redis, keys: FrontierKeys, plain: PlainForm | None = None) -> None:
        self.client = client
        self.keys = keys
        self.plain_wire = plain.wire() if plain is not None else ""
        self.trips: dict[str, int] = {}
        """Round trips by the operation that made them (``bench.counts`` prints them)."""
        self._flush = client.register_script(lua.FLUSH)
        self._pop = client.register_script(lua.POP)
        self._site = client.register_script(lua.SITE)
        self._renew = client.register_script(lua.RENEW)
        self._pause = client.register_script(lua.PAUSE)

    @property
    def round_trips(self) -> int:
        return sum(self.trips.values())

    def _trip(self, kind: str) -> None:
        self.trips[kind] = self.trips.get(kind, 0) + 1

    def flush_call(
        self,
        pushes: list[Push],
        acks: list[bytes],
        releases: list[bytes] | None = None,
        dead: list[DeadLetter] | None = None,
        *,
        hints: list[Hint] | None = None,
        versions: list[VersionRecord] | None = None,
        max_articles: int = 0,
        max_links: int = 0,
        now_ms: int = 0,
        epoch: str = "",
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of one ``lua.FLUSH`` call (``epoch``: refused unless it is
        Redis's; empty: not checked)."""
        releases = releases or []
        dead = dead or []
        hints = hints or []
        versions = versions or []
        args: list[Any] = [epoch, max_articles, max_links, self.plain_wire]
        args += [*pushes_args(pushes), len(hints)]
        for hint in hints:
            args += [hint.article_id, hint.hint]
        args.append(len(versions))
        for record in versions:
            args += record.args()
        args += [len(acks), *acks, len(releases), *releases, len(dead)]
        for letter in dead:
            args += [letter.url, letter.record(now_ms), letter.article_id, letter.lease]
        k = self.keys
        keys = [k.pending, k.delayed, k.seen_articles, k.seen_hubs, k.run_articles]
        keys += [k.run_seen_articles, k.run_links, k.leased, k.dead, k.awaiting_articles]
        keys += [k.hints, k.run_failed_articles, k.epoch, k.versions, k.run_announced_articles]
        keys += [k.recheck, k.run_rechecked, k.run_tally, k.pending_plain, k.pending_plain_sections]
        return keys, args

    async def flush(
        self,
        pushes: list[Push],
        acks: list[bytes],
        releases: list[bytes] | None = None,
        dead: list[DeadLetter] | None = None,
        *,
        hints: list[Hint] | None = None,
        versions: list[VersionRecord] | None = None,
        max_articles: int = 0,
        max_links: int = 0,
        now_ms: int = 0,
        epoch: str = "",
    ) -> FlushResult:
        """One ``lua.FLUSH`` call; ``StateLost`` when ``epoch`` is no longer Redis's."""
        keys, args = self.flush_call(
            pushes, acks, releases, dead, hints=hints, versions=versions,
            max_articles=max_articles, max_links=max_links, now_ms=now_ms, epoch=epoch,
        )  # fmt: skip
        self._trip("flush")
        result = await self._flush(keys=keys, args=args)
        if int(result[0]) < 0:
            raise StateLost(f"Redis no longer holds epoch {epoch}: its state was lost")
        queued, filtered, capped, acked, links, kept, n = (int(x) for x in result[:7])
        named, cut = result[7 : 7 + 2 * n], result[7 + 2 * n :]
        counts = {_text(named[j]): int(named[j + 1]) for j in range(0, len(named), 2)}
        return FlushResult(
            queued, filtered, capped, acked, links, kept,
            [pushes[int(index) - 1] for index in cut], counts,
        )  # fmt: skip

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

    async def pop(self, k: int, budget: Budget) -> PopResult:
        """Lease up to ``k`` requests (``lua.POP``)."""
        keys = self.keys
        self._trip("pop")
        raw = await self._pop(
            keys=[
                keys.pending,
                keys.leased,
                keys.delayed,
                keys.awaiting_articles,
                keys.hints,
                keys.pending_plain,
                keys.pending_plain_sections,
            ],
            args=[k, budget.lease_ms],
        )
        granted = raw[3:]
        return PopResult(
            int(raw[0]),
            int(raw[1]),
            [bytes(m) for m in granted[0::2]],
            [bytes(h) for h in granted[1::2]],
            int(raw[2]),
        )

    async def site(
        self,
        budget: Budget,
        sender: str,
        *,
        ask: Sequence[str] = (),
        left: Sequence[str] = (),
        times_per_place: int = 1,
        more_times: int = 0,
        max_times: int = 8,
        horizon_ms: int = 1000,
    ) -> SiteAnswer:
        """One ``lua.SITE`` call: the tokens ``left`` leave the site, the tokens ``ask`` ask
        to go to it (in this order), and send times are reserved for the cluster's budget,
        ``times_per_place`` for each token let in and ``more_times`` besides, ``max_times``
        at most."""
        keys = self.keys
        self._trip("site")
        raw = await self._site(
            keys=[keys.at_site, keys.site_waiting, keys.site_polled, keys.sent,
                  keys.pause_until, keys.min_interval],
            args=[budget.concurrency, budget.site_ttl_ms, budget.stale_ms, budget.interval_ms,
                  budget.per_second, 1000, sender, horizon_ms, times_per_place, more_times,
                  max_times, len(left), *left, len(ask), *ask],
        )  # fmt: skip
        places = [int(x) for x in raw[3 : 3 + len(ask)]]
        times = [int(t) for t in raw[3 + len(ask) :]]
        return SiteAnswer(int(raw[0]), int(raw[1]), int(raw[2]), places, times)

    async def renew(self, members: list[bytes], lease_ms: int) -> int:
        if not members:
            return 0
        self._trip("renew")
        return int(await self._renew(keys=[self.keys.leased], args=[lease_ms, *members]))

    async def pause(self, seconds: float) -> None:
        """No worker fetches anything for ``seconds`` (a 429/503 ``Retry-After``)."""
        self._trip("pause")
        await self._pause(keys=[self.keys.pause_until], args=[int(seconds * 1000)])

    async def set_min_interval(self, seconds: float) -> None:
        """Space requests at least ``seconds`` apart (robots.txt Crawl-delay)."""
        self._trip("min_interval")
        await self.client.set(self.keys.min_interval, int(seconds * 1000))

    async def counts(self) -> tuple[int, int, int]:
        """(pending, leased, delayed) requests in the whole cluster."""
        self._trip("counts")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zcard(self.keys.pending)
            pipe.hget(self.keys.pending_plain, "total")
            pipe.zcard(self.keys.leased)
            pipe.zcard(self.keys.delayed)
            pending, plain, leased, delayed = await pipe.execute()
        return int(pending) + int(plain or 0), int(leased), int(delayed)

    async def dead_letters(self) -> dict[str, dict[str, Any]]:
        self._trip("dead_letters")
        raw = await self.client.hgetall(self.keys.dead)
        return {_text(k): json.loads(v) for k, v in raw.items()}

    async def replay(self, urls: list[str] | None = None) -> int:
        """Queue dead letters again (all, or those of ``urls``); returns how many."""
        letters = await self.dead_letters()
        chosen = [v for u, v in letters.items() if urls is None or u in urls]
        if not chosen:
            return 0
        await self.flush([Push.again(str(v["request"])) for v in chosen], [])
        self._trip("replay")
        await self.client.hdel(self.keys.dead, *[str(v["url"]) for v in chosen])
        return len(chosen)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
