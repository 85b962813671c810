"""The Scrapy scheduler of every worker: a local window onto the shared frontier in Redis.

scrapy-redis pops a request and forgets it: a worker killed mid-fetch loses those URLs for
good (their fingerprints are already "seen"). Here a request is *leased*, not popped:

- ``next_request`` hands the engine a request from a small local buffer of leases; it never
  waits on Redis. The request rate is paced later, at send time (``politeness``).
- ``enqueue_request`` puts the request in a local outbox. A background flush writes outboxes
  and acknowledgements to Redis in one script call, children before the acknowledgement of
  the request that produced them.
- A request is acknowledged when the engine is done with it: downloaded, its callback run,
  its items through the pipelines (the store answers only once they are written), its new
  requests in the outbox. A worker that dies before that never acknowledges it, and its lease
  returns to the queue when it expires (``TASS_LEASE_SECONDS``); live workers renew theirs.
- Redis calls run on asyncio tasks; when Redis is unreachable they back off and retry, the
  outbox waits in memory, and the run is never declared finished meanwhile.

The run lifecycle (seeding, completion, the run report) is in ``lifecycle``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Self

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro

from crawler.frontier import signals as frontier_signals
from crawler.frontier.codec import decode_request, encode_request
from crawler.frontier.config import FrontierConfig
from crawler.frontier.known import KnownArticles
from crawler.frontier.lifecycle import RunLifecycle
from crawler.frontier.queue import DeadLetter, Push, RedisFrontier
from crawler.frontier.redis import open_redis
from crawler.frontier.retry import DELAY_META
from crawler.items import PageFailure

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from crawler.spiders.tass import TassSpider

logger = logging.getLogger(__name__)

# Meta keys that describe one attempt, dropped from a dead letter so that a replay starts fresh.
_ATTEMPT_META = (
    "retry_times", "redirect_times", "redirect_ttl", "redirect_urls", "redirect_reasons",
    "download_slot", "download_latency", "download_timeout", "depth", DELAY_META,
)  # fmt: skip


def frontier_scheduler(crawler: Crawler) -> TassScheduler | None:
    """The crawler's ``TassScheduler`` once the engine has opened it (Scrapy offers no public
    way to reach the scheduler; the engine's slot holds it)."""
    slot = getattr(crawler.engine, "_slot", None)
    scheduler = getattr(slot, "scheduler", None)
    return scheduler if isinstance(scheduler, TassScheduler) else None


class TassScheduler:
    """Leases requests from the shared frontier and acknowledges them once handled."""

    def __init__(self, crawler: Crawler, config: FrontierConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.spider: TassSpider | None = None
        self.client: Redis | None = None
        self.queue: RedisFrontier | None = None
        self.lifecycle: RunLifecycle | None = None
        self.ready: deque[bytes] = deque()
        self.inflight: dict[Request, bytes] = {}
        self.outbox: list[Push] = []
        self.acks: list[bytes] = []
        self.releases: list[bytes] = []
        self.dead: list[DeadLetter] = []
        self.known = KnownArticles()
        self.redis_ok = True
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._fill_wanted = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._stat_deltas: dict[str, int] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, FrontierConfig.from_settings(crawler.settings))

    # --- Scrapy's scheduler interface ------------------------------------------------------
    def open(self, spider: Spider) -> Deferred[None] | None:
        self.spider = spider  # type: ignore[assignment]
        self.client = open_redis(self.config.redis_url)
        self.queue = RedisFrontier(self.client, self.config.keys)
        self._hook_engine()
        sig = self.crawler.signals
        sig.connect(self.item_scraped, signal=signals.item_scraped)
        sig.connect(self.response_received, signal=signals.response_received)
        sig.connect(self.robots_parsed, signal=signals.robots_parsed)
        sig.connect(self.pause_requested, signal=frontier_signals.pause_requested)
        self.lifecycle = RunLifecycle(self.crawler, self, self.config)
        sig.connect(self.lifecycle.spider_idle, signal=signals.spider_idle)
        loop = asyncio.get_event_loop()
        self._tasks = [
            loop.create_task(self._fill_loop()),
            loop.create_task(self._flush_loop()),
            loop.create_task(self._renew_loop()),
        ]
        return deferred_from_coro(self.lifecycle.open())

    def close(self, reason: str) -> Deferred[None]:
        return deferred_from_coro(self._close(reason))

    def has_pending_requests(self) -> bool:
        return bool(self.ready)

    def enqueue_request(self, request: Request) -> bool:
        self.outbox.append(self.push_for(request))
        self._flush_wanted.set()
        self._count("tass/frontier/enqueued")
        return True

    def next_request(self) -> Request | None:
        if len(self.ready) < self.config.prefetch:
            self._fill_wanted.set()
        if not self.ready:
            return None
        member = self.ready.popleft()
        assert self.spider is not None
        try:
            request = decode_request(member, self.spider)
        except (ValueError, TypeError, KeyError) as exc:
            logger.error("Undecodable queued request %r: %s", member[:200], exc)
            self.dead.append(DeadLetter("undecodable", member, f"undecodable: {exc}", 1))
            self.acks.append(member)
            self._flush_wanted.set()
            return None
        self.inflight[request] = member
        return request

    # --- what goes to Redis -------------------------------------------------------------------
    def push_for(self, request: Request) -> Push:
        """How ``request`` is queued: member, priority, dedupe key and delay."""
        assert self.spider is not None
        delay = float(request.meta.pop(DELAY_META, 0) or 0)
        if delay:
            self._count("tass/frontier/retries")
        raw_id = request.meta.get("article_id")
        article_id = raw_id if isinstance(raw_id, int) and 0 < raw_id < 2**32 else 0
        is_article = article_id > 0
        fingerprint = ""
        if not is_article:
            fingerprinter = self.crawler.request_fingerprinter
            assert fingerprinter is not None
            fingerprint = fingerprinter.fingerprint(request).hex()
        if is_article:
            self.known.add(article_id)
        return Push(
            member=encode_request(request, self.spider),
            priority=request.priority,
            article_id=article_id,
            fingerprint=fingerprint,
            # A redirect continues under the claim of the request it came from; a retry was
            # deduplicated when first queued.
            unfiltered=request.dont_filter or bool(request.meta.get("redirect_times")),
            refresh=bool(request.meta.get("refresh")) and is_article,
            delay_ms=int(delay * 1000),
        )

    def fetching(self) -> int:
        """Requests this worker has at the site or about to send there."""
        return len(self.crawler.engine.downloader.active) + len(self.ready)

    @property
    def worker_id(self) -> str:
        assert self.lifecycle is not None
        return self.lifecycle.coordinator.worker_id

    def unflushed(self) -> int:
        """Work this worker holds that Redis does not know of yet."""
        return len(self.outbox) + len(self.acks) + len(self.dead) + len(self.releases)

    def take_stat_deltas(self) -> dict[str, int]:
        """This worker's counters since the last call, to add to the run's."""
        deltas, self._stat_deltas = self._stat_deltas, {}
        return deltas

    def restore_stat_deltas(self, deltas: dict[str, int]) -> None:
        """Counters that could not be added to the run's (Redis away) wait for the next try."""
        for key, value in deltas.items():
            self._stat_deltas[key] = self._stat_deltas.get(key, 0) + value

    # --- signals ------------------------------------------------------------------------------
    def response_received(self, response: Response, request: Request) -> None:
        self._count("tass/frontier/responses")
        self._count(f"tass/frontier/responses/{request.meta.get('kind', 'other')}")

    def item_scraped(self, item: Any, response: Any) -> None:
        """Counts the run's outcomes; a recorded failure also becomes a dead letter
        (replayable with ``scrapy replay``), keyed by its URL."""
        if not isinstance(item, PageFailure):
            self._count("tass/run/articles")
            return
        self._count("tass/run/failures")
        if self.spider is None:
            return
        request = getattr(response, "request", None)
        if not isinstance(request, Request):
            return
        fresh = request.replace(
            url=item.url,  # the URL asked for, before any redirect
            meta={k: v for k, v in request.meta.items() if k not in _ATTEMPT_META},
            dont_filter=True,
        )
        try:
            member = encode_request(fresh, self.spider)
        except TypeError:
            logger.exception("Cannot keep a dead letter for %s", item.url)
            return
        self.dead.append(
            DeadLetter(item.url, member, item.reason, item.attempts, item.article_id or 0)
        )
        self._count("tass/frontier/dead_letters")
        self._flush_wanted.set()

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        agent = self.crawler.settings.get("USER_AGENT") or "*"
        delay = robotparser.crawl_delay(agent)
        if delay and self.queue is not None:
            logger.info("robots.txt asks for a Crawl-delay of %ss: spacing the cluster", delay)
            self._spawn(self.queue.set_min_interval(float(delay)))

    def pause_requested(self, seconds: float) -> None:
        if self.queue is not None:
            logger.warning("The site asked to wait %.1fs: pausing every worker", seconds)
            self._count("tass/frontier/pauses")
            self._spawn(self.queue.pause(seconds))

    # --- background work ----------------------------------------------------------------------
    async def _fill_loop(self) -> None:
        assert self.queue is not None
        backoff = 0.5
        while not self.closing:
            await self._fill_wanted.wait()
            self._fill_wanted.clear()
            want = self.config.prefetch - len(self.ready)
            if want <= 0 or self.closing:
                continue
            try:
                result = await self.queue.pop(
                    want, self.config.budget, self.worker_id, self.fetching()
                )
            except (RedisError, OSError) as exc:
                self._redis_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._fill_wanted.set()
                continue
            self._redis_up()
            backoff = 0.5
            if result.reaped:
                self._count("tass/frontier/leases_reaped", result.reaped)
            self.ready.extend(result.leases)
            if result.leases:
                self._count("tass/frontier/leased", len(result.leases))
                self.wake_engine()
            else:
                await asyncio.sleep(0.05)  # nothing to lease now: do not spin on Redis

    async def _flush_loop(self) -> None:
        while not self.closing:
            await self._flush_wanted.wait()
            await asyncio.sleep(self.config.flush_delay)  # gather a batch
            self._flush_wanted.clear()
            if not await self._flush_once():
                await asyncio.sleep(1.0)
                self._flush_wanted.set()

    async def _flush_once(self) -> bool:
        """Write the outbox, acknowledgements, releases and dead letters; False if Redis failed."""
        if not self.unflushed():
            return True
        assert self.queue is not None and self.spider is not None
        pushes, acks, releases, dead = self.outbox, self.acks, self.releases, self.dead
        self.outbox, self.acks, self.releases, self.dead = [], [], [], []
        try:
            result = await self.queue.flush(
                pushes,
                acks,
                releases,
                dead,
                max_articles=self.spider.params.max_articles,
                now_ms=int(time.time() * 1000),
            )
        except (RedisError, OSError) as exc:
            # Put everything back in order, ahead of what came meanwhile.
            self.outbox[:0], self.acks[:0] = pushes, acks
            self.releases[:0], self.dead[:0] = releases, dead
            self._redis_down(exc)
            return False
        self._redis_up()
        self._count("tass/frontier/queued", result.queued)
        self._count("tass/frontier/filtered", result.filtered)
        self._count("tass/frontier/over_max_articles", result.capped)
        self._count("tass/frontier/acked", result.acked)
        return True

    async def _renew_loop(self) -> None:
        assert self.queue is not None
        interval = self.config.budget.lease_ms / 3000
        while not self.closing:
            await asyncio.sleep(interval)
            held = [*self.ready, *self.inflight.values()]
            try:
                await self.queue.renew(held, self.config.budget.lease_ms)
            except (RedisError, OSError) as exc:
                self._redis_down(exc)

    async def _close(self, reason: str) -> None:
        self.closing = True
        # Leases not started go back to the queue now, not when they expire.
        self.releases.extend(self.ready)
        self.ready.clear()
        self.releases.extend(self.inflight.values())
        self.inflight.clear()
        deadline = time.monotonic() + 60
        while self.unflushed() and time.monotonic() < deadline:
            if not await self._flush_once():
                await asyncio.sleep(1.0)
        if self.unflushed():
            logger.error(
                "Closing with %d queue writes Redis never took: their requests will be "
                "fetched again when their leases expire",
                self.unflushed(),
            )
        if self.lifecycle is not None:
            await self.lifecycle.close(reason)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.crawler.stats is not None and self.queue is not None:
            self.crawler.stats.set_value("tass/frontier/redis_round_trips", self.round_trips())
        if self.client is not None:
            await self.client.aclose()

    # --- helpers ------------------------------------------------------------------------------
    def round_trips(self) -> int:
        trips = self.queue.round_trips if self.queue is not None else 0
        if self.lifecycle is not None:
            trips += self.lifecycle.coordinator.round_trips
        return trips

    def _hook_engine(self) -> None:
        """Acknowledge a request when the engine lets go of it (download, callback, pipelines
        and new requests all done). Scrapy has no public hook for that moment; the engine
        slot's ``remove_request`` is called exactly then, so it is wrapped."""
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is None:
            raise RuntimeError("the engine has no slot: TassScheduler must be opened by it")
        original = slot.remove_request

        def remove_request(request: Request) -> None:
            original(request)
            member = self.inflight.pop(request, None)
            if member is not None:
                self.acks.append(member)
                self._flush_wanted.set()

        slot.remove_request = remove_request

    def wake_engine(self) -> None:
        """Make the engine ask for requests now (Scrapy's own heartbeat is every 5 s)."""
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        if slot is not None and engine.scraper.slot is not None:  # the engine is fully open
            slot.nextcall.schedule()

    def _spawn(self, coro: Any) -> None:
        async def guarded() -> None:
            try:
                await coro
            except (RedisError, OSError) as exc:
                self._redis_down(exc)

        asyncio.get_event_loop().create_task(guarded())

    def _redis_down(self, exc: BaseException) -> None:
        if self.redis_ok:
            logger.warning("Redis unreachable (%s): holding work and retrying", exc)
        self.redis_ok = False
        self._count("tass/frontier/redis_errors")

    def _redis_up(self) -> None:
        if not self.redis_ok:
            logger.info("Redis reachable again: carrying on")
        self.redis_ok = True

    def _count(self, key: str, value: int = 1) -> None:
        if value:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value(key, value)
            self._stat_deltas[key] = self._stat_deltas.get(key, 0) + value
