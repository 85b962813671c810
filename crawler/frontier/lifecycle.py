"""The run lifecycle of one worker: join or seed a run, stay while the cluster works, end it.

- ``crawl`` mode (``scrapy crawl tass``): at start, join the current run or begin one and seed
  it; exit once the whole cluster has been idle (queue empty, nothing in flight anywhere) for
  ``TASS_IDLE_GRACE`` seconds. The worker that sees the end first ends the run.
- ``worker`` mode (``-a mode=worker``, the compose workers): never exit; between runs, wait for
  a run request pushed by ``scrapy schedule`` and seed it.

Every ``TASS_HEARTBEAT_INTERVAL`` seconds the worker publishes how many requests it has in
flight, adopts the current run's parameters, and wakes the engine so that requests queued by
other workers are picked up at once rather than at Scrapy's 5-second idle heartbeat.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from twisted.internet import task

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import redis_from_settings
from crawler.frontier.run import Run, RunCoordinator
from crawler.params import CrawlParams

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.spiders.tass import TassSpider

logger = logging.getLogger(__name__)


class RunLifecycleExtension:
    """Seeds each run once and decides when this worker's crawl is over."""

    def __init__(
        self, crawler: Crawler, coordinator: RunCoordinator, idle_grace: float, interval: float
    ) -> None:
        self.crawler = crawler
        self.coordinator = coordinator
        self.idle_grace = idle_grace
        self.interval = interval
        self.run: Run | None = None
        self.idle_since: float | None = None
        self.loop: task.LoopingCall | None = None
        self.spider: TassSpider | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is empty")
        idle_grace = settings.getfloat("TASS_IDLE_GRACE", 2.0)
        interval = settings.getfloat("TASS_HEARTBEAT_INTERVAL", 0.5)
        if idle_grace < 0 or interval <= 0:
            raise ValueError("TASS_IDLE_GRACE must be >= 0 and TASS_HEARTBEAT_INTERVAL > 0")
        coordinator = RunCoordinator(
            redis_from_settings(settings), FrontierKeys(settings.get("TASS_REDIS_PREFIX", "tass"))
        )
        extension = cls(crawler, coordinator, idle_grace, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    # --- signals --------------------------------------------------------------------------
    def spider_opened(self, spider: TassSpider) -> None:
        self.spider = spider
        if spider.mode == "crawl":
            self.begin_run(spider.params.to_args())
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(self.interval, now=True)

    def spider_idle(self, spider: TassSpider) -> None:
        coordinator = self.coordinator
        coordinator.heartbeat(0)
        if not coordinator.cluster_idle():
            self.idle_since = None
            raise DontCloseSpider
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.idle_grace:
            raise DontCloseSpider
        self.end_run()
        if spider.mode == "worker":
            requested = coordinator.pop_run_request()
            if requested is not None:
                self.begin_run(requested)
            raise DontCloseSpider

    def spider_closed(self, spider: TassSpider, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.coordinator.leave()

    # --- run ------------------------------------------------------------------------------
    def begin_run(self, args: dict[str, Any]) -> None:
        assert self.spider is not None
        run, seeder = self.coordinator.begin(args)
        self.adopt(run)
        self.idle_since = None
        if seeder:
            logger.info("Run %s begins; this worker seeds it", run.id)
            engine = self.crawler.engine
            for request in self.spider.seed_requests():
                engine.crawl(request)
        else:
            logger.info("Joining run %s (started %s)", run.id, run.started_at)

    def adopt(self, run: Run) -> None:
        assert self.spider is not None
        if self.run is None or self.run.id != run.id:
            self.run = run
            self.spider.configure(
                CrawlParams.from_args(
                    run.args,
                    default_since_days=self.crawler.settings.getint("TASS_SINCE_DAYS"),
                )
            )

    def end_run(self) -> None:
        run = self.coordinator.current()
        if run is not None and self.coordinator.finish(run):
            logger.info("Run %s is complete: the cluster is idle", run.id)
            self.crawler.stats.set_value("tass/run/ended_by_this_worker", run.id)
        self.run = None

    def busy(self) -> int:
        engine = self.crawler.engine
        scraper_slot = engine.scraper.slot
        active = len(scraper_slot.active) if scraper_slot is not None else 0
        return len(engine.downloader.active) + active

    def tick(self) -> None:
        try:
            self.coordinator.heartbeat(self.busy())
            current = self.coordinator.current()
            if current is not None and self.spider is not None:
                self.adopt(current)
        except Exception:  # a failed heartbeat must not stop the loop
            logger.exception("Heartbeat failed")
            return
        engine = self.crawler.engine
        slot = getattr(engine, "_slot", None)
        if slot is not None:  # wake the engine: other workers may have queued requests
            slot.nextcall.schedule()
