"""The run lifecycle of one worker: join or seed a run, stay while the cluster works, end it.

Scrapy-free: the scheduler adapter hands it the spider's seeds as queue pushes, a way to wake
the engine and a way to write the run report; the engine's idle signal asks ``keep_open``.

- ``crawl`` mode (``scrapy crawl tass``): on opening, join the current run or begin one (the
  run record and its seeds are written in one script call); exit once the whole cluster has
  looked idle (nothing pending, leased or delayed, no worker holding unflushed work) for
  ``TASS_IDLE_GRACE`` seconds and its run has ended. The worker whose ``finish`` succeeds ends
  the run, decides its outcome (``crawler.outcome``), publishes it in Redis and writes the run
  report (collection ``runs``, and the log); every other worker of the run reads the outcome
  it published (``outcome``), so each one exits with it.
- ``worker`` mode (``-a mode=worker``, the compose workers): never exit; between runs, take a
  run request pushed by ``scrapy schedule`` and begin it.

Run parameters are an immutable value owned here: each run the worker works on becomes a
``RunScope`` (the run's id, its ``CrawlParams`` and the book its high-water marks are written
into), handed to the spider through the ``RunSpider`` protocol. A callback reads the scope it
started with; a later run gets a new scope and never changes the old one.

Every ``TASS_HEARTBEAT_INTERVAL`` the worker publishes its unflushed work, reads the cluster's
state, adopts the current run, adds its counters and marks to the run's, and wakes the engine.
The idle decision reads that cached state (the engine's idle signal is synchronous), and an
unknown state (Redis unreachable) never ends a run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from crawler import aio, defaults
from crawler.frontier.health import transient
from crawler.outcome import FAILED, Verdict
from crawler.retrying import retry

if TYPE_CHECKING:
    from crawler.frontier.config import FrontierConfig
    from crawler.frontier.counters import Counters
    from crawler.frontier.feed import FeedEntry
    from crawler.frontier.health import RedisHealth
    from crawler.frontier.known import KnownArticles
    from crawler.frontier.queue import Push
    from crawler.frontier.run import ClusterState, Run, RunCoordinator
    from crawler.frontier.window import LeaseWindow
    from crawler.params import CrawlParams, ParamDefaults

logger = logging.getLogger(__name__)

# The local copy of the seen-articles bitmap is refreshed every this many heartbeats.
SNAPSHOT_EVERY = 10


class MarkBook:
    """The high-water marks a run reached in this worker, until the lifecycle takes them."""

    def __init__(self) -> None:
        self._reached: dict[str, int] = {}

    def reach(self, feed: str, when: datetime | None) -> None:
        """``feed`` is complete up to ``when`` in this run (marks only move forward)."""
        if when is not None:
            ts = int(when.timestamp())
            self._reached[feed] = max(ts, self._reached.get(feed, ts))

    def take(self) -> dict[str, int]:
        marks, self._reached = self._reached, {}
        return marks

    def restore(self, marks: dict[str, int]) -> None:
        """Marks Redis did not take wait for the next try."""
        for feed, ts in marks.items():
            self.reach(feed, datetime.fromtimestamp(ts, UTC))


@dataclass(frozen=True, slots=True)
class RunScope:
    """What a spider works with during one run: its parameters and where its marks go."""

    run_id: str
    params: CrawlParams
    marks: MarkBook = field(default_factory=MarkBook, compare=False)


@runtime_checkable
class RunSpider(Protocol):
    """What the frontier needs of a spider (``TassSpider`` implements it)."""

    mode: str
    """``crawl`` (run once, then exit) or ``worker`` (take runs from ``scrapy schedule``)."""

    run_args: Mapping[str, Any]
    """The run arguments this crawl was started with (``-a since=...``)."""

    def seed_requests(self, params: CrawlParams) -> Iterable[Any]:
        """The requests that begin a run with ``params``."""
        ...

    def enter_run(self, scope: RunScope) -> None:
        """Work on the run ``scope`` from now on."""
        ...

    def fed_request(self, entry: FeedEntry) -> Any:
        """The request for a URL fed on ``start_urls`` (``feed.FeedRejected`` if none)."""
        ...


class RunLifecycle:
    """Decides when this worker's crawl is over (module docstring)."""

    def __init__(
        self,
        coordinator: RunCoordinator,
        *,
        window: LeaseWindow,
        known: KnownArticles,
        health: RedisHealth,
        counters: Counters,
        config: FrontierConfig,
        param_defaults: ParamDefaults,
        mode: str,
        seeds: Callable[[CrawlParams], list[Push]],
        enter: Callable[[RunScope], None],
        conclude: Callable[[Run, dict[str, int]], tuple[dict[str, Any], Verdict]],
        report: Callable[[Run, dict[str, Any], Verdict], Awaitable[None]],
        wake: Callable[[], None],
    ) -> None:
        self.coordinator = coordinator
        self.window = window
        self.known = known
        self.health = health
        self.counters = counters
        self.config = config
        self.param_defaults = param_defaults
        self.mode = mode
        self._seeds = seeds
        self._enter = enter
        self._conclude = conclude
        self._report = report
        self._wake = wake
        self.scope: RunScope | None = None
        self.state: ClusterState | None = None
        self.idle_since: float | None = None
        self.finished = False
        self.ending = False
        self.outcome: Verdict | None = None
        """How the last run this worker worked on ended (None: it has not ended)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def max_articles(self) -> int:
        return self.scope.params.max_articles if self.scope is not None else 0

    async def open(self, args: Mapping[str, Any]) -> None:
        if self.mode == "crawl":
            await retry(lambda: self.begin_run(args), **self.health.retrying("begin the run"))
        self._task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def close(self) -> None:
        await aio.stop([self._task])
        try:
            await self.add_stats()
            await self.coordinator.leave()
        except Exception as exc:
            if not transient(exc):
                raise
            logger.warning("Could not say goodbye to Redis: %s", exc)

    # --- runs -------------------------------------------------------------------------------
    async def begin_run(self, args: Mapping[str, Any]) -> None:
        marks = await self.coordinator.marks()
        params = self.param_defaults.params({**args, "marks": marks})
        # Seeds are built with the requested parameters; if another run is going, they are
        # not queued and this worker adopts that run's parameters instead.
        seeds = self._seeds(params)
        run, seeder = await self.coordinator.begin(params.to_args(), seeds, params.max_articles)
        self.adopt(run)
        self.finished = False
        self.idle_since = None
        if seeder:
            self.counters.count("tass/run/seeds", len(seeds))
            logger.info("Run %s begins; this worker queued its %d seeds", run.id, len(seeds))
        else:
            logger.info("Joining run %s (started %s)", run.id, run.started_at)
        self._wake()

    def adopt(self, run: Run) -> None:
        """Work on ``run`` (a new scope: marks of an earlier run are not this run's)."""
        if self.scope is None or self.scope.run_id != run.id:
            params = self.param_defaults.params(run.args)
            if self.scope is None or params != self.scope.params:
                logger.info("Run parameters: %s", params.to_args())
            self.scope = RunScope(run.id, params)
            self.outcome = None
            self._enter(self.scope)

    async def end_run(self) -> None:
        """The cluster looked idle long enough: end the run (once, cluster-wide), or learn how
        it ended; a run that turns out not to be over yet is stayed with."""
        try:
            await self.add_stats()
            state = await self.coordinator.state()
            mine = self.scope.run_id if self.scope is not None else None
            if state.run is not None:
                stats = await self.coordinator.finish(state.run)
                if stats is not None:
                    await self._ended(state.run, stats)
                elif state.run.id == mine:
                    return  # work came back meanwhile (or a worker still holds some)
            if mine is not None and self.outcome is None:
                await self._learn_outcome(mine)
            if self.mode == "worker":
                requested = await self.coordinator.pop_run_request()
                if requested is not None:
                    await self.begin_run(requested)
                    return
            else:
                self.finished = True
        except Exception as exc:
            if not transient(exc):
                raise
            self.health.down(exc)
        finally:
            self.ending = False
            self.idle_since = None
            self._wake()

    async def _ended(self, run: Run, stats: dict[str, int]) -> None:
        """This worker ended ``run``: its outcome, published for the other workers first (they
        wait for it), then its report (``runs`` and the log)."""
        report, verdict = self._conclude(run, stats)
        record = {**verdict.to_dict(), "ended_at": datetime.now(UTC).isoformat()}
        await retry(
            lambda: self.coordinator.publish_outcome(run, record),
            **self.health.retrying("publish the run's outcome"),
        )
        self.outcome = verdict
        await self._report(run, report, verdict)

    async def _learn_outcome(self, run_id: str) -> None:
        """Another worker ended run ``run_id``: the outcome it published."""
        found = await self.coordinator.wait_outcome(run_id, defaults.OUTCOME_WAIT)
        if found is None:
            self.outcome = Verdict(
                FAILED,
                (
                    f"outcome_unknown: the worker that ended run {run_id} did not publish its "
                    f"outcome within {defaults.OUTCOME_WAIT:.0f}s",
                ),
            )
        else:
            self.outcome = Verdict.from_dict(found)
        logger.info("Run %s ended (by another worker): %s", run_id, self.outcome.summary())

    # --- the engine's idle signal -----------------------------------------------------------
    def keep_open(self, now: float | None = None) -> bool:
        """Whether the engine, idle now, must keep the spider open (False: the run is over)."""
        if self.finished:
            return False
        state = self.state
        looks_idle = (
            state is not None
            and state.idle
            and self.health.ok
            and not self.window.unflushed()
            and not self.window.holding()
        )
        if not looks_idle:
            self.idle_since = None
            return True
        now = time.monotonic() if now is None else now
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since >= self.config.idle_grace and not self.ending:
            self.ending = True
            asyncio.get_running_loop().create_task(self.end_run())
        return True

    # --- heartbeat --------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        ticks = 0
        while True:
            await self.tick(snapshot=ticks % SNAPSHOT_EVERY == 0)
            ticks += 1
            self._wake()
            await asyncio.sleep(self.config.heartbeat)

    async def tick(self, *, snapshot: bool = False) -> None:
        """One heartbeat: publish, read the cluster, adopt its run, add counters and marks."""
        deltas, marks, book = self._take()
        try:
            self.state, bitmap = await self.coordinator.tick(
                self.window.unflushed(), deltas, marks, snapshot=snapshot
            )
        except Exception as exc:
            if not transient(exc):
                raise
            self.state = None
            self._restore(deltas, marks, book)
            self.health.down(exc)
            return
        if bitmap is not None:
            self.known.replace(bitmap)
        if self.state.run is not None:
            self.adopt(self.state.run)
        self.health.up()

    async def add_stats(self) -> None:
        """Add this worker's counters and high-water marks to the run's."""
        deltas, marks, book = self._take()
        try:
            await self.coordinator.tick(None, deltas, marks)
        except Exception:
            self._restore(deltas, marks, book)
            raise

    def _take(self) -> tuple[dict[str, int], dict[str, int], MarkBook | None]:
        book = self.scope.marks if self.scope is not None else None
        return self.counters.take(), book.take() if book is not None else {}, book

    def _restore(
        self, deltas: dict[str, int], marks: dict[str, int], book: MarkBook | None
    ) -> None:
        """Counters and marks Redis did not take wait for the next try."""
        self.counters.restore(deltas)
        if book is not None:
            book.restore(marks)
