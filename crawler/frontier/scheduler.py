"""The Scrapy scheduler of every worker: a thin adapter over the frontier's Scrapy-free core.

scrapy-redis pops a request and forgets it: a worker killed mid-fetch loses those URLs for
good (their fingerprints are already "seen"). Here a request is *leased*, not popped:

- ``next_request`` hands the engine a request from the local window of leases
  (``window.LeaseWindow``); it never waits on Redis. The request rate is paced later, at
  send time (``politeness``).
- ``enqueue_request`` encodes the request (``codec``) and hands it to the window's batched
  writes: children before the acknowledgement of the request that produced them. An article
  request's feed hint is kept in Redis by article id (``codec.HINTS_META``) and comes back on
  the leased request.
- A request is acknowledged when the engine is done with it: downloaded, its callback run,
  its items through the pipelines (the store answers only once they are written), its new
  requests enqueued (``internals.on_request_done``). A worker that dies before that never
  acknowledges it, and its lease returns to the queue when it expires
  (``TASS_LEASE_SECONDS``); live workers renew theirs.
- An article item that passed the pipelines (so it is stored) has its version written
  (``versions.VersionRecord``: from the item, the sighting its request carried and its feed
  hint) before its request is acknowledged; a failure writes none, so the change it was
  fetched for is announced again in the next run.
- The run (seeding, completion, the report) is ``lifecycle.RunLifecycle``'s; the spider takes
  part through the ``lifecycle.RunSpider`` protocol. The signals the frontier listens to are
  connected here and forwarded to the core in a line or two each.

``Frontier`` is the core of one worker, built when the engine opens the scheduler; the other
adapters (middlewares, the download handler) and the crawl command find it with
``frontier_of(crawler)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro

from crawler import defaults, internals
from crawler.frontier import recovery
from crawler.frontier import signals as frontier_signals
from crawler.frontier.codec import (
    ATTEMPT_META,
    FAILED_META,
    HINTS_META,
    attach_hints,
    decode_request,
    encode_request,
    push_for,
)
from crawler.frontier.config import FrontierConfig
from crawler.frontier.counters import Counters
from crawler.frontier.feed import FeedEntry, FeedIntake, FeedQueue
from crawler.frontier.health import RedisHealth, transient
from crawler.frontier.known import KnownArticles
from crawler.frontier.lifecycle import RunLifecycle, RunScope, RunSpider
from crawler.frontier.progress import WorkerBeat
from crawler.frontier.queue import DeadLetter, RedisFrontier
from crawler.frontier.redis import open_redis
from crawler.frontier.report import check_drift, conclude_run, store_run_report
from crawler.frontier.run import Run, RunCoordinator
from crawler.frontier.versions import SIGHTING_META, VersionRecord
from crawler.frontier.window import LeaseWindow
from crawler.items import ArticleItem, PageFailure
from crawler.mongo import MongoConfig, ShutdownClock
from crawler.outcome import OK, Verdict, failure_counters
from crawler.params import ParamDefaults
from crawler.retrying import RetryDeadlineExceeded
from crawler.status import read_status

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from redis.asyncio import Redis
    from scrapy import Spider
    from scrapy.http import Response
    from twisted.internet.defer import Deferred

    from crawler.frontier.queue import Push
    from crawler.params import CrawlParams

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Frontier:
    """The Scrapy-free core of one worker's frontier, as the adapters see it."""

    config: FrontierConfig
    client: Redis
    queue: RedisFrontier
    coordinator: RunCoordinator
    health: RedisHealth
    counters: Counters
    known: KnownArticles
    window: LeaseWindow
    lifecycle: RunLifecycle
    feed: FeedIntake

    @property
    def worker_id(self) -> str:
        return self.coordinator.worker_id

    async def status(self, runs: int = 0) -> dict[str, Any]:
        """The cluster now, as ``scrapy status`` shows it (``crawler.status.read_status``)."""
        return await read_status(
            self.client, self.config.keys, stale_after=self.config.worker_stale, runs=runs
        )

    def round_trips(self) -> dict[str, int]:
        """This worker's Redis round trips by kind: the queue's operations, ``run`` (the run's
        coordination, heartbeats included) and ``feed`` (URLs fed on ``start_urls``)."""
        trips = dict(self.queue.trips)
        trips["run"] = self.coordinator.round_trips
        trips["feed"] = self.feed.queue.round_trips
        return trips


_FRONTIERS: weakref.WeakKeyDictionary[Crawler, Frontier] = weakref.WeakKeyDictionary()


def frontier_of(crawler: Crawler) -> Frontier | None:
    """The crawler's frontier once the engine has opened its ``TassScheduler`` (and after the
    crawl, for the command to read the run's outcome)."""
    return _FRONTIERS.get(crawler)


class TassScheduler:
    """Leases requests from the shared frontier and acknowledges them once handled."""

    def __init__(self, crawler: Crawler, config: FrontierConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.spider: Spider | None = None
        self.run_spider: RunSpider | None = None
        self.frontier: Frontier | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, FrontierConfig.from_settings(crawler.settings))

    # --- Scrapy's scheduler interface ------------------------------------------------------
    def open(self, spider: Spider) -> Deferred[None] | None:
        if not isinstance(spider, RunSpider):
            raise TypeError(f"{type(spider).__name__} does not implement the RunSpider protocol")
        internals.check(self.crawler)
        self.spider = self.run_spider = spider
        self.frontier = _FRONTIERS[self.crawler] = self._build(spider)
        internals.on_request_done(self.crawler, self.request_done)
        self._connect()
        self.frontier.window.start()
        self.frontier.feed.start()
        return deferred_from_coro(self.frontier.lifecycle.open(spider.run_args))

    def close(self, reason: str) -> Deferred[None]:
        return deferred_from_coro(self._close())

    def has_pending_requests(self) -> bool:
        return self.frontier is not None and bool(self.frontier.window.ready)

    def enqueue_request(self, request: Request) -> bool:
        frontier = self._core()
        push = self.push_for(request)
        if push.article_id:
            frontier.known.add(push.article_id)
        if push.delay_ms:
            frontier.counters.count("tass/frontier/retries")
        frontier.window.push(push)
        frontier.counters.count("tass/frontier/enqueued")
        return True

    def next_request(self) -> Request | None:
        frontier, spider = self._core(), self.spider
        assert spider is not None
        frontier.window.want()
        member = frontier.window.take()
        if member is None:
            return None
        try:
            request = decode_request(member, spider)
        except (ValueError, TypeError, KeyError) as exc:
            logger.error("Undecodable queued request %r: %s", member[:200], exc)
            letter = DeadLetter("undecodable", member, f"undecodable: {exc}", 1, lease=member)
            frontier.window.dead(letter)
            return None
        attach_hints(request, frontier.window.hint_of(member))
        frontier.window.started(request, member)
        return request

    def push_for(self, request: Request) -> Push:
        """How ``request`` is queued (``codec.push_for`` with this crawler's fingerprinter)."""
        assert self.spider is not None
        return push_for(request, self.spider, self._fingerprint)

    def _fingerprint(self, request: Request) -> bytes:
        fingerprinter = self.crawler.request_fingerprinter
        assert fingerprinter is not None
        return fingerprinter.fingerprint(request)

    # --- signals and the engine's hooks, forwarded to the core -------------------------------
    def request_done(self, request: Request) -> None:
        self._core().window.finished(request)

    def spider_idle(self) -> None:
        if self._core().lifecycle.keep_open():
            raise DontCloseSpider

    def response_received(self, response: Response, request: Request) -> None:
        counters = self._core().counters
        counters.count("tass/frontier/responses")
        counters.count(f"tass/frontier/responses/{request.meta.get('kind', 'other')}")

    def item_scraped(self, item: Any, response: Any) -> None:
        """Counts the run's outcomes (a failure by its class, its page kind and whether it
        was a seed: what ``crawler.outcome`` decides from); a stored article's version is
        written, and a recorded failure becomes a dead letter (replayable with ``scrapy
        replay``), keyed by its URL."""
        frontier = self._core()
        if not isinstance(item, PageFailure):
            frontier.counters.count("tass/run/articles")
            if isinstance(item, ArticleItem):
                meta = getattr(getattr(response, "request", None), "meta", None) or {}
                frontier.window.version(
                    VersionRecord.of(
                        item.id, url=item.url, title=item.title, lead=item.lead, body=item.body,
                        modified_at=item.modified_at, published_at=item.published_at,
                        hint=meta.get(HINTS_META), sighting_meta=meta.get(SIGHTING_META),
                    )
                )  # fmt: skip
            return
        request = getattr(response, "request", None)
        meta = request.meta if isinstance(request, Request) else {}
        for key in failure_counters(item.reason, meta.get("kind", "other"), bool(meta.get("seed"))):
            frontier.counters.count(key)
        letter = self._dead_letter(item, request)
        if letter is not None:
            frontier.window.failed(request, letter)
            frontier.counters.count("tass/frontier/dead_letters")

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        delay = robotparser.crawl_delay(self.crawler.settings.get("USER_AGENT") or "*")
        if delay:
            logger.info("robots.txt asks for a Crawl-delay of %ss: spacing the cluster", delay)
            self._spawn(self._core().queue.set_min_interval(float(delay)))

    def run_counts(self, counts: dict[str, int]) -> None:
        """Counters a component adds to the run's (the spider's extraction counts)."""
        counters = self._core().counters
        for key, value in counts.items():
            counters.count(key, value)

    def pause_requested(self, seconds: float) -> None:
        logger.warning("The site asked to wait %.1fs: pausing every worker", seconds)
        self._core().counters.count("tass/frontier/pauses")
        self._spawn(self._core().queue.pause(seconds))

    # --- helpers ----------------------------------------------------------------------------
    def _core(self) -> Frontier:
        if self.frontier is None:
            raise RuntimeError("the TassScheduler is not open")
        return self.frontier

    def _build(self, spider: RunSpider) -> Frontier:
        config, crawler = self.config, self.crawler
        client = open_redis(config.redis_url)
        queue = RedisFrontier(client, config.keys, config.plain)
        coordinator = RunCoordinator(client, config.keys, stale_after=config.worker_stale)
        health = RedisHealth(on_error=lambda: counters.count("tass/frontier/redis_errors"))
        stats = crawler.stats
        counters = Counters(stats.inc_value if stats is not None else None)
        known = KnownArticles()
        lifecycle: RunLifecycle | None = None

        def wake() -> None:
            internals.wake_engine(crawler)

        def enter(scope: RunScope) -> None:
            spider.enter_run(scope)
            crawler.signals.send_catch_log(frontier_signals.run_entered, run_id=scope.run_id)

        window = LeaseWindow(
            queue, config, coordinator.worker_id, health, counters,
            on_leased=wake,
            max_articles=lambda: lifecycle.max_articles if lifecycle is not None else 0,
            epoch=lambda: coordinator.epoch,
        )  # fmt: skip
        lifecycle = RunLifecycle(
            coordinator, window=window, known=known, health=health, counters=counters,
            config=config, param_defaults=ParamDefaults.from_settings(crawler.settings),
            mode=spider.mode, seeds=self._seeds, recover=self._recover, enter=enter,
            conclude=self._conclude, report=self._report, wake=wake,
        )  # fmt: skip
        coordinator.describe = WorkerBeat(
            mode=spider.mode, totals=counters.totals, inflight=lambda: len(window.inflight),
            ready=lambda: len(window.ready),
            run_id=lambda: lifecycle.scope.run_id if lifecycle.scope is not None else None,
            budget={"rate": config.rate, "concurrency": config.budget.concurrency},
        ).describe  # fmt: skip
        feed = FeedIntake(
            FeedQueue(client, config.keys), worker_id=coordinator.worker_id, health=health,
            counters=counters, claim_ms=config.budget.lease_ms, build=self._fed_push,
            may_claim=lambda: lifecycle.scope is not None and not lifecycle.finished,
            may_begin=lambda: spider.mode == "worker",
            begin=lambda: lifecycle.begin_run({"seeds": "none"}),
            epoch=lambda: coordinator.epoch,
        )  # fmt: skip
        return Frontier(config, client, queue, coordinator, health, counters, known, window,
                        lifecycle, feed)  # fmt: skip

    def _fed_push(self, entry: FeedEntry) -> Push:
        """How a URL fed on ``start_urls`` is queued (the spider makes its request)."""
        assert self.run_spider is not None
        return self.push_for(self.run_spider.fed_request(entry))

    def _seeds(self, params: CrawlParams) -> list[Push]:
        """The run's seeds, marked as seeds (a run whose every seed failed has failed)."""
        assert self.run_spider is not None
        seeds = list(self.run_spider.seed_requests(params))
        for request in seeds:
            request.meta["seed"] = True
        return [self.push_for(r) for r in seeds]

    async def _recover(self) -> list[Push]:
        """Before a run this worker may begin (``recovery``): on an empty Redis, the seen
        articles rebuilt from MongoDB; the retries MongoDB knows to be pending (Redis holds
        none of them then). MongoDB away: the next run does it."""
        shutdown = ShutdownClock.of(self.crawler)
        end = time.monotonic() + defaults.RECOVERY_DEADLINE
        config = MongoConfig.from_settings(self.crawler.settings)
        client, keys = self._core().client, self.config.keys
        try:
            seen = await recovery.restore_seen(client, keys, config, lambda: end)
            if seen:
                logger.warning(
                    "Redis held no state: its seen articles are rebuilt from the %d stored in "
                    "MongoDB (a backfill does not fetch them again)", seen,
                )  # fmt: skip
            return await recovery.pending_pushes(config, lambda: min(end, shutdown.deadline()))
        except RetryDeadlineExceeded as exc:
            logger.warning("MongoDB not read for what Redis lost (the next run will): %s", exc)
            return []

    async def _conclude(
        self, run: Run, stats: dict[str, int], known: list[str]
    ) -> tuple[dict[str, Any], Verdict]:
        """The run's report and outcome; the drift check first, unless the run has failed
        already (``known``), so that its alarms weigh in the outcome."""
        drift = None
        if not known:
            shutdown = ShutdownClock.of(self.crawler)
            end = time.monotonic() + defaults.DRIFT_CHECK_DEADLINE
            drift = await check_drift(
                self.crawler.settings, run, stats, self.config.drift,
                lambda: min(end, shutdown.deadline()),
            )  # fmt: skip
        return conclude_run(
            self.crawler.settings, run, stats, datetime.now(UTC), known, drift=drift
        )

    async def _report(self, run: Run, report: dict[str, Any], verdict: Verdict) -> None:
        """The report of the run this worker ended, in ``runs`` (through a MongoDB outage,
        until the retry deadline or the crawler's stop) and the log."""
        if self.crawler.stats is not None:
            self.crawler.stats.set_value("tass/run/ended_by_this_worker", run.id)
        shutdown = ShutdownClock.of(self.crawler)
        end = time.monotonic() + MongoConfig.from_settings(self.crawler.settings).retry_deadline
        report = await store_run_report(
            self.crawler.settings, report, lambda: min(end, shutdown.deadline())
        )
        log = logger.info if verdict.outcome == OK else logger.error
        log("Run %s is complete: %s", run.id, report["summary"])
        for reason in verdict.reasons:
            log("Run %s is %s: %s", run.id, verdict.outcome, reason)

    def _connect(self) -> None:
        connect = self.crawler.signals.connect
        connect(self.item_scraped, signal=signals.item_scraped)
        connect(self.response_received, signal=signals.response_received)
        connect(self.robots_parsed, signal=signals.robots_parsed)
        connect(self.spider_idle, signal=signals.spider_idle)
        connect(self.pause_requested, signal=frontier_signals.pause_requested)
        connect(self.run_counts, signal=frontier_signals.run_counts)

    def _dead_letter(self, item: PageFailure, request: Any) -> DeadLetter | None:
        if self.spider is None or not isinstance(request, Request):
            return None
        fresh = request.replace(
            url=item.url,  # the URL asked for, before any redirect
            meta={
                **{k: v for k, v in request.meta.items() if k not in ATTEMPT_META},
                FAILED_META: True,
            },
            dont_filter=True,
        )
        try:
            member = encode_request(fresh, self.spider)
        except TypeError:
            logger.exception("Cannot keep a dead letter for %s", item.url)
            return None
        return DeadLetter(item.url, member, item.reason, item.attempts, item.article_id or 0)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        health = self._core().health

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:
                if not transient(exc):
                    raise
                health.down(exc)

        asyncio.get_running_loop().create_task(guarded())

    async def _close(self) -> None:
        frontier = self.frontier
        if frontier is None:
            return
        await frontier.feed.close()
        await frontier.window.close()
        await frontier.lifecycle.close()
        stats, outcome = self.crawler.stats, frontier.lifecycle.outcome
        if stats is not None:
            trips = frontier.round_trips()
            stats.set_value("tass/frontier/redis_round_trips", sum(trips.values()))
            for kind, count in trips.items():
                stats.set_value(f"tass/frontier/redis_round_trips/{kind}", count)
            if outcome is not None:
                stats.set_value("tass/run/outcome", outcome.outcome)
                stats.set_value("tass/run/outcome_reasons", list(outcome.reasons))
        await frontier.client.aclose()
