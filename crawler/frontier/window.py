"""One worker's local window onto the shared queue: leases ready, requests in flight, writes.

Scrapy-free: requests are their queue members (``codec``) and an opaque key per request in
flight; the scheduler adapter (``scheduler``) turns them into Scrapy requests and back.

- *Fill*: ``want()`` asks the fill loop for leases when half of ``prefetch`` or fewer are
  ready (so each call leases half a buffer or more, not the one or two just taken); the
  loop leases them from Redis (``RedisFrontier.pop``) and calls ``on_leased`` (the adapter
  wakes the engine). It never blocks the engine: ``take()`` returns None when nothing is ready.
  A pop that finds nothing to lease says when the first delayed retry (or a lease, a dead
  worker's) comes due, and the loop asks again then by itself: an idle engine asks only on
  its heartbeat (5 s), so each retry round at a run's end would wait that out.
  A lease's feed hint waits beside it until ``hint_of`` takes it.
- *Writes*: pushes, feed hints of dropped requests, versions of stored articles,
  acknowledgements, releases and dead letters go through one batcher
  (``crawler.batch``, one batch at a time, gathered for ``flush_delay``, or less when no
  lease is ready: the worker waits for work then) into one script call
  (``RedisFrontier.flush``): in arrival order, so a request's children are queued with or
  before its acknowledgement. A failed write is retried with backoff (``crawler.retrying``)
  while the rest waits behind it; nothing is dropped while the worker lives, except links
  found on pages past the run's ``TASS_MAX_RUN_LINKS``, which the script refuses: they are
  counted (``tass/links/run_cut``, into the run report) and logged with their pages, one line
  per batch.
- *Renew*: every third of the lease, the leases held (ready and in flight) are renewed.
- *Close*: ready and in-flight leases are released at once (not left to expire), every write
  is handed to Redis for up to ``FRONTIER_CLOSE_DEADLINE`` seconds, then the loops stop.

``unflushed()`` is what the heartbeat publishes: writes Redis does not have yet, including a
batch on its way, so no other worker ends the run while this one still holds work.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from crawler import defaults
from crawler.batch import Batcher
from crawler.frontier.health import transient
from crawler.frontier.queue import DeadLetter, Hint, Push, StateLost
from crawler.retrying import RetryDeadlineExceeded, retry

if TYPE_CHECKING:
    from crawler.frontier.config import FrontierConfig
    from crawler.frontier.counters import Counters
    from crawler.frontier.health import RedisHealth
    from crawler.frontier.queue import RedisFrontier
    from crawler.frontier.versions import VersionRecord

logger = logging.getLogger(__name__)

CUT_PAGES_NAMED = 5
"""Pages named in one log line of links cut at the run's cap (the rest are counted)."""

DUE_MARGIN = 0.005
"""Seconds after a retry's due time that the idle fill loop asks for it (Redis's clock and
this one's timer need not agree to the millisecond)."""

Write = tuple[str, Any]
"""``("push", Push)``, ``("hint", Hint)``, ``("version", VersionRecord)``, ``("ack", member)``,
``("release", member)`` or ``("dead", DeadLetter)``."""


class LeaseWindow:
    """Leases, requests in flight and queue writes of one worker (module docstring)."""

    def __init__(
        self,
        queue: RedisFrontier,
        config: FrontierConfig,
        worker_id: str,
        health: RedisHealth,
        counters: Counters,
        *,
        on_leased: Callable[[], None],
        max_articles: Callable[[], int],
        epoch: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.queue = queue
        self.config = config
        self.worker_id = worker_id
        self.health = health
        self.counters = counters
        self._on_leased = on_leased
        self._max_articles = max_articles
        self._epoch = epoch
        self.ready: deque[bytes] = deque()
        self.hints: dict[bytes, bytes] = {}
        """Feed hints of ready leases, by member, until ``hint_of`` takes them."""
        self.inflight: dict[Hashable, bytes] = {}
        # Gathered for flush_delay, or sent at once when no lease is ready: the worker waits
        # for work then, and what it queues may be that work (its own or another worker's).
        self.writes: Batcher[Write, None] = Batcher(
            self._write,
            size=None,
            interval=config.flush_delay,
            name="frontier-flush",
            idle=lambda: not self.ready,
        )
        self._closing_at: float | None = None
        self._unconfirmed: set[bytes] = set()
        """Leases acknowledged or released that Redis has not confirmed yet."""
        self._letters: dict[Hashable, list[DeadLetter]] = {}
        """Dead letters of requests in flight, written when each is done with."""
        self._fill_wanted = asyncio.Event()
        self._due: asyncio.TimerHandle | None = None
        """Asks for leases when the next delayed retry or lease comes due (``_ask_when_due``)."""
        self._tasks: list[asyncio.Task[None]] = []

    # --- what the adapter calls ------------------------------------------------------------
    def start(self) -> None:
        """Start the fill and renew loops (on the running event loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._fill_loop(), name="tass-frontier-fill"),
            loop.create_task(self._renew_loop(), name="tass-frontier-renew"),
        ]

    def want(self) -> None:
        """Ask for leases if half of ``prefetch`` or fewer are ready (one call for several:
        measured at 1,000 articles, one pop per 2.7 requests when asked below ``prefetch``)."""
        if len(self.ready) <= self.config.prefetch // 2:
            self._fill_wanted.set()

    def take(self) -> bytes | None:
        """The next ready lease, or None."""
        return self.ready.popleft() if self.ready else None

    def hint_of(self, member: bytes) -> bytes:
        """The feed hint that came with the lease ``member`` (``b""``: none)."""
        return self.hints.pop(member, b"")

    def started(self, key: Hashable, member: bytes) -> None:
        """The lease ``member`` is now the request ``key``, in flight."""
        self.inflight[key] = member

    def finished(self, key: Hashable) -> None:
        """The request ``key`` is done with: acknowledge its lease (after its children), or
        end it as the dead letter it failed with (``failed``)."""
        member = self.inflight.pop(key, None)
        letters = self._letters.pop(key, [])
        if member is not None and letters:
            letters[0] = replace(letters[0], lease=member)
        elif member is not None:
            self._submit(("ack", member))
        for letter in letters:
            self.dead(letter)

    def failed(self, key: Hashable, letter: DeadLetter) -> None:
        """The request ``key`` in flight failed for good: its lease ends as ``letter`` when it
        is done with (so the run's tally counts it once, as failed, not as done)."""
        if key in self.inflight:
            self._letters.setdefault(key, []).append(letter)
        else:
            self.dead(letter)

    def push(self, push: Push) -> None:
        self._submit(("push", push))

    def hint(self, article_id: int, hint: bytes) -> None:
        """Keep what a feed said of ``article_id``, whose request was dropped as known."""
        if hint:
            self._submit(("hint", Hint(article_id, hint)))

    def version(self, record: VersionRecord) -> None:
        """Write the version of an article just stored (before its request's acknowledgement)."""
        self._submit(("version", record))

    def dead(self, letter: DeadLetter) -> None:
        """Keep ``letter``; its ``lease``, if any, ends with it."""
        self._submit(("dead", letter))

    def unflushed(self) -> int:
        """Writes Redis does not have yet (waiting, or on their way)."""
        return len(self.writes)

    def holding(self) -> bool:
        """Whether this worker holds leases (ready or in flight)."""
        return bool(self.ready or self.inflight)

    def closing(self) -> bool:
        """Whether ``close`` was called (the loops stop on their own then)."""
        return self._closing_at is not None

    def held(self) -> list[bytes]:
        return [*self.ready, *self.inflight.values()]

    def abandon(self) -> None:
        """Forget every lease (Redis lost them with its state): nothing is acknowledged or
        released; writes still waiting are refused by Redis (their epoch is gone)."""
        self.ready.clear()
        self.inflight.clear()
        self._letters.clear()
        self._unconfirmed.clear()

    def release_blocking(self, url: str) -> int:
        """After a forced stop (no event loop any more): hand back, synchronously, every lease
        held and every one whose acknowledgement or release Redis never confirmed (their
        children may not be queued either: they are fetched again)."""
        members = list(dict.fromkeys([*self.held(), *self._unconfirmed]))
        count = self.queue.release_blocking(url, members)
        self.ready.clear()
        self.inflight.clear()
        self._unconfirmed.clear()
        return count

    async def close(self) -> None:
        """Release every lease, hand every write to Redis (within the deadline), stop."""
        self._closing_at = time.monotonic()
        for member in [*self.ready, *self.inflight.values()]:
            self._submit(("release", member))
        for letters in self._letters.values():
            for letter in letters:
                self.dead(letter)
        self.ready.clear()
        self.hints.clear()
        self.inflight.clear()
        self._letters.clear()
        if self._due is not None:
            self._due.cancel()
        await self.writes.close()
        for task in self._tasks:
            task.cancel()
        # A cancellation that lands inside a Redis call can come back out of it as a connection
        # error, which the loops retry: so they also stop on their own once closing (seen: a
        # fill loop back at its wait after the cancel, and a worker that never exited).
        self._fill_wanted.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ready:  # leased by a fill that outlived its cancellation: hand them back too
            for member in self.ready:
                self._submit(("release", member))
            self.ready.clear()
            self.hints.clear()
            await self.writes.close()

    # --- loops -----------------------------------------------------------------------------
    def _submit(self, write: Write) -> None:
        if write[0] in ("ack", "release"):
            self._unconfirmed.add(write[1])
        elif write[0] == "dead" and write[1].lease:
            self._unconfirmed.add(write[1].lease)
        self.writes.submit(write)

    async def _fill_loop(self) -> None:
        budget = self.config.budget
        while self._closing_at is None:
            await self._fill_wanted.wait()
            self._fill_wanted.clear()
            if self.closing():
                return
            if len(self.ready) >= self.config.prefetch:
                continue
            result = await retry(
                lambda: self.queue.pop(max(1, self.config.prefetch - len(self.ready)), budget),
                **self.health.retrying("lease", self._deadline),
            )
            self.health.up()
            self.counters.count("tass/frontier/leases_reaped", result.reaped)
            self.ready.extend(result.leases)
            self.hints.update((m, h) for m, h in zip(result.leases, result.hints, strict=True) if h)
            if self.closing():
                return  # leased as the window closed: close() hands them back
            self._ask_when_due(result.due_ms - result.now_ms if result.due_ms else None)
            if result.leases:
                self.counters.count("tass/frontier/leased", len(result.leases))
                self._on_leased()
            else:
                await asyncio.sleep(0.05)  # nothing to lease now: do not spin on Redis

    def _ask_when_due(self, in_ms: int | None) -> None:
        """Ask for leases again in ``in_ms`` (when the next retry or lease comes due; None:
        nothing waits), whatever the engine asks meanwhile."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if in_ms is not None:
            loop = asyncio.get_running_loop()
            self._due = loop.call_later(max(0, in_ms) / 1000 + DUE_MARGIN, self._fill_wanted.set)

    async def _renew_loop(self) -> None:
        lease_ms = self.config.budget.lease_ms
        while not self.closing():
            await asyncio.sleep(lease_ms / 3000)
            try:
                await self.queue.renew(self.held(), lease_ms)
            except Exception as exc:
                if not transient(exc):
                    raise
                self.health.down(exc)

    def _deadline(self) -> float:
        if self._closing_at is None:
            return math.inf
        return self._closing_at + defaults.FRONTIER_CLOSE_DEADLINE

    async def _write(self, batch: list[Write]) -> list[BaseException | None]:
        """One script call for a batch of writes, retried until Redis takes it."""
        parts: dict[str, list[Any]] = {"push": [], "hint": [], "ack": [], "release": []}
        parts["dead"], parts["version"] = [], []
        for kind, value in batch:
            parts[kind].append(value)
        try:
            result = await retry(
                lambda: self.queue.flush(
                    parts["push"],
                    parts["ack"],
                    parts["release"],
                    parts["dead"],
                    hints=parts["hint"],
                    versions=parts["version"],
                    max_articles=self._max_articles(),
                    max_links=self.config.max_run_links,
                    now_ms=int(time.time() * 1000),
                    epoch=self._epoch() or "",
                ),
                **self.health.retrying("queue write", self._deadline),
            )
        except StateLost as exc:
            logger.warning("Dropped %d queue writes of a run Redis lost: %s", len(batch), exc)
            return [exc] * len(batch)
        except RetryDeadlineExceeded as exc:
            logger.error(
                "Closing with %d queue writes Redis never took: their requests will be "
                "fetched again when their leases expire",
                len(batch),
            )
            return [exc] * len(batch)
        self.health.up()
        self._unconfirmed.difference_update(parts["ack"] + parts["release"])
        self._unconfirmed.difference_update(letter.lease for letter in parts["dead"])
        self.counters.count("tass/frontier/queued", result.queued)
        self.counters.count("tass/frontier/filtered", result.filtered)
        self.counters.count("tass/frontier/over_max_articles", result.capped)
        self.counters.count("tass/frontier/acked", result.acked)
        self.counters.count("tass/links/queued", result.links)
        self._links_cut(result.links_cut)
        self.counters.count("tass/frontier/hints_kept", result.hints_kept)
        for name, value in result.counts.items():
            self.counters.count(f"tass/{name}", value)
        return [None] * len(batch)

    def _links_cut(self, cut: list[Push]) -> None:
        """Count the links refused for the run's ``TASS_MAX_RUN_LINKS``, and log them in one
        line per batch naming the pages they were found on (those with the most first)."""
        if not cut:
            return
        self.counters.count("tass/links/run_cut", len(cut))
        pages: dict[str, int] = {}
        for push in cut:
            pages[push.via] = pages.get(push.via, 0) + 1
        ranked = sorted(pages.items(), key=lambda kv: -kv[1])
        named = ", ".join(f"{page} ({count})" for page, count in ranked[:CUT_PAGES_NAMED])
        more = len(ranked) - CUT_PAGES_NAMED
        logger.warning(
            "Link cap: the run has queued TASS_MAX_RUN_LINKS=%d links found on pages; %d more "
            "not followed, found on %s%s",
            self.config.max_run_links, len(cut), named,
            f" and {more} other pages" if more > 0 else "",
        )  # fmt: skip
