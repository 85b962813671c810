"""The run lifecycle of one worker: join or seed a run, stay while the cluster works, end it.

- ``crawl`` mode (``scrapy crawl tass``): on opening, join the current run or begin one (the
  run record and its seeds are written in one script call); exit once the whole cluster has
  looked idle (nothing pending, leased or delayed, no worker holding unflushed work) for
  ``TASS_IDLE_GRACE`` seconds. The worker whose ``finish`` succeeds ends the run and writes
  the run report (collection ``runs``, and the log).
- ``worker`` mode (``-a mode=worker``, the compose workers): never exit; between runs, take a
  run request pushed by ``scrapy schedule`` and begin it.

Every ``TASS_HEARTBEAT_INTERVAL`` the worker publishes its unflushed work, reads the cluster's
state, adopts the current run's parameters, adds its counters to the run's, and wakes the
engine. The idle decision reads that cached state: the engine's idle signal is synchronous,
and an unknown state (Redis unreachable) never ends a run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from scrapy.exceptions import DontCloseSpider

from crawler.frontier.run import ClusterState, Run, RunCoordinator

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.frontier.config import FrontierConfig
    from crawler.frontier.scheduler import TassScheduler
    from crawler.spiders.tass import TassSpider

logger = logging.getLogger(__name__)

# The local copy of the seen-articles bitmap is refreshed every this many heartbeats.
SNAPSHOT_EVERY = 10


class RunLifecycle:
    """Owned by the scheduler; decides when this worker's crawl is over."""

    def __init__(self, crawler: Crawler, scheduler: TassScheduler, config: FrontierConfig) -> None:
        assert scheduler.client is not None
        self.crawler = crawler
        self.scheduler = scheduler
        self.config = config
        self.coordinator = RunCoordinator(
            scheduler.client, config.keys, stale_after=config.worker_stale
        )
        self.run: Run | None = None
        self.state: ClusterState | None = None
        self.idle_since: float | None = None
        self.finished = False
        self.ending = False
        self._task: asyncio.Task[None] | None = None

    @property
    def spider(self) -> TassSpider:
        assert self.scheduler.spider is not None
        return self.scheduler.spider

    async def open(self) -> None:
        if self.spider.mode == "crawl":
            await self._retrying(self.begin_run, dict(self.spider.args))
        self._task = asyncio.get_event_loop().create_task(self._tick_loop())

    async def close(self, reason: str) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.add_stats()
            await self.coordinator.leave()
        except (RedisError, OSError) as exc:
            logger.warning("Could not say goodbye to Redis: %s", exc)

    # --- runs -------------------------------------------------------------------------------
    async def begin_run(self, args: dict[str, Any]) -> None:
        spider = self.spider
        marks = await self.coordinator.marks()
        params = spider.params_from({**args, "marks": marks})
        # Seeds are built with the requested parameters; if another run is going, they are
        # not queued and this worker adopts that run's parameters instead.
        spider.configure(params)
        seeds = [self.scheduler.push_for(r) for r in spider.seed_requests()]
        run, seeder = await self.coordinator.begin(params.to_args(), seeds, params.max_articles)
        self.adopt(run)
        self.finished = False
        self.idle_since = None
        if seeder:
            logger.info("Run %s begins; this worker queued its %d seeds", run.id, len(seeds))
        else:
            logger.info("Joining run %s (started %s)", run.id, run.started_at)
        self.scheduler.wake_engine()

    def adopt(self, run: Run) -> None:
        if self.run is None or self.run.id != run.id:
            self.run = run
            self.spider.take_marks()  # marks of an earlier run are not this run's
            self.spider.configure(self.spider.params_from(run.args))

    async def end_run(self) -> None:
        """The cluster looked idle long enough: end the run (once, cluster-wide)."""
        try:
            await self.add_stats()
            state = await self.coordinator.state()
            if state.run is not None:
                stats = await self.coordinator.finish(state.run)
                if stats is not None:
                    await self.report(state.run, stats)
            if self.spider.mode == "worker":
                requested = await self.coordinator.pop_run_request()
                if requested is not None:
                    await self.begin_run(requested)
                    return
            else:
                self.finished = True
        except (RedisError, OSError) as exc:
            self.scheduler._redis_down(exc)
        finally:
            self.ending = False
            self.idle_since = None
            self.scheduler.wake_engine()

    async def report(self, run: Run, stats: dict[str, int]) -> None:
        from crawler.frontier.report import write_run_report

        ended = datetime.now(UTC)
        report = await write_run_report(self.crawler.settings, run, stats, ended)
        logger.info("Run %s is complete: %s", run.id, report["summary"])
        if self.crawler.stats is not None:
            self.crawler.stats.set_value("tass/run/ended_by_this_worker", run.id)

    # --- the engine's idle signal -----------------------------------------------------------
    def spider_idle(self) -> None:
        if self.finished:
            return  # the run is over: let the engine close the spider
        scheduler = self.scheduler
        state = self.state
        looks_idle = (
            state is not None
            and state.idle
            and scheduler.redis_ok
            and not scheduler.unflushed()
            and not scheduler.ready
            and not scheduler.inflight
        )
        if not looks_idle:
            self.idle_since = None
            raise DontCloseSpider
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since >= self.config.idle_grace and not self.ending:
            self.ending = True
            asyncio.get_event_loop().create_task(self.end_run())
        raise DontCloseSpider

    # --- heartbeat --------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        ticks = 0
        while True:
            deltas = self.scheduler.take_stat_deltas()
            marks = self.spider.take_marks()
            snapshot = ticks % SNAPSHOT_EVERY == 0
            try:
                self.state, bitmap = await self.coordinator.tick(
                    self.scheduler.unflushed(), deltas, marks, snapshot=snapshot
                )
                if bitmap is not None:
                    self.scheduler.known.replace(bitmap)
                if self.state.run is not None:
                    self.adopt(self.state.run)
                self.scheduler._redis_up()
            except (RedisError, OSError) as exc:
                self.state = None
                self._restore(deltas, marks)
                self.scheduler._redis_down(exc)
            ticks += 1
            self.scheduler.wake_engine()
            await asyncio.sleep(self.config.heartbeat)

    async def add_stats(self) -> None:
        """Add this worker's counters and high-water marks to the run's."""
        deltas = self.scheduler.take_stat_deltas()
        marks = self.spider.take_marks()
        try:
            await self.coordinator.tick(None, deltas, marks)
        except (RedisError, OSError):
            self._restore(deltas, marks)
            raise

    def _restore(self, deltas: dict[str, int], marks: dict[str, int]) -> None:
        """Counters and marks Redis did not take wait for the next try."""
        self.scheduler.restore_stat_deltas(deltas)
        for feed, ts in marks.items():
            self.spider.reach_mark(feed, datetime.fromtimestamp(ts, UTC))

    async def _retrying(self, step: Any, *args: Any) -> None:
        delay = 0.5
        while True:
            try:
                await step(*args)
                return
            except (RedisError, OSError) as exc:
                self.scheduler._redis_down(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
