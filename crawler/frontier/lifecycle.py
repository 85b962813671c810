"""The run lifecycle of one worker: join or seed a run, stay while the cluster works, end it.

Scrapy-free: the scheduler adapter hands it the spider's seeds as queue pushes, a way to wake
the engine and a way to write the run report; the engine's idle signal asks ``keep_open``.

- ``crawl`` mode (``scrapy crawl tass``): on opening, join the current run or begin one (the
  run record and its seeds are written in one script call); exit once the whole cluster has
  looked idle (nothing pending, leased or delayed, no worker holding unflushed work) for
  ``TASS_IDLE_GRACE`` seconds. The worker whose ``finish`` succeeds ends the run and writes
  the run report (collection ``runs``, and the log).
- ``worker`` mode (``-a mode=worker``, the compose workers): never exit; between runs, take a
  run request pushed by ``scrapy schedule`` and begin it.

Run parameters are an immutable value owned here: each run the worker works on becomes a
``RunScope`` (the run's id and its ``CrawlParams``), handed to the spider through the
``RunSpider`` protocol. A callback reads the scope it started with; a later run gets a new
scope and never changes the old one. An incremental run's parameters include its re-check
(``recheck.plan``: the sample's share and the windows), fixed by the worker that begins it from
the state earlier runs left; the worker that ends it moves that state by the run's findings
(``recheck.advance``) before the report is written.

Every ``TASS_HEARTBEAT_INTERVAL`` the worker publishes its unflushed work, reads the cluster's
state, adopts the current run, adds its counters to the run's, and wakes the engine.
The idle decision reads that cached state (the engine's idle signal is synchronous), and an
unknown state (Redis unreachable) never ends a run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from crawler.frontier import recheck
from crawler.frontier.health import transient
from crawler.retrying import retry

if TYPE_CHECKING:
    from crawler.frontier.config import FrontierConfig
    from crawler.frontier.counters import Counters
    from crawler.frontier.health import RedisHealth
    from crawler.frontier.known import KnownArticles
    from crawler.frontier.queue import Push
    from crawler.frontier.run import ClusterState, Run, RunCoordinator
    from crawler.frontier.window import LeaseWindow
    from crawler.params import CrawlParams, ParamDefaults

logger = logging.getLogger(__name__)

# The local copy of the seen-articles bitmap is refreshed every this many heartbeats.
SNAPSHOT_EVERY = 10


@dataclass(frozen=True, slots=True)
class RunScope:
    """What a spider works with during one run: its id and its parameters."""

    run_id: str
    params: CrawlParams


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
        report: Callable[[Run, dict[str, int]], Awaitable[None]],
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
        self._report = report
        self._wake = wake
        self.scope: RunScope | None = None
        self.state: ClusterState | None = None
        self.idle_since: float | None = None
        self.finished = False
        self.ending = False
        self._task: asyncio.Task[None] | None = None

    @property
    def max_articles(self) -> int:
        return self.scope.params.max_articles if self.scope is not None else 0

    async def open(self, args: Mapping[str, Any]) -> None:
        if self.mode == "crawl":
            await retry(lambda: self.begin_run(args), **self.health.retrying("begin the run"))
        self._task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.add_stats()
            await self.coordinator.leave()
        except Exception as exc:
            if not transient(exc):
                raise
            logger.warning("Could not say goodbye to Redis: %s", exc)

    # --- runs -------------------------------------------------------------------------------
    async def begin_run(self, args: Mapping[str, Any]) -> None:
        params = self.param_defaults.params(args)
        if params.incremental:
            # The run's window (``since``) and its re-check count back from the site's clock.
            state, known = await self.coordinator.recheck_state()
            clock = recheck.site_clock(state)
            plan = recheck.plan(self.config.recheck, state, known, clock)
            params = self.param_defaults.params(
                {**args, "recheck": plan.to_args()}, now=datetime.fromtimestamp(clock, UTC)
            )
        # Seeds are built with the requested parameters; if another run is going, they are
        # not queued and this worker adopts that run's parameters instead.
        seeds = self._seeds(params)
        run, seeder = await self.coordinator.begin(params.to_args(), seeds, params.max_articles)
        self.adopt(run)
        self.finished = False
        self.idle_since = None
        if seeder:
            logger.info("Run %s begins; this worker queued its %d seeds", run.id, len(seeds))
        else:
            logger.info("Joining run %s (started %s)", run.id, run.started_at)
        self._wake()

    def adopt(self, run: Run) -> None:
        """Work on ``run`` (a new scope)."""
        if self.scope is None or self.scope.run_id != run.id:
            params = self.param_defaults.params(run.args)
            if self.scope is None or params != self.scope.params:
                logger.info("Run parameters: %s", params.to_args())
            self.scope = RunScope(run.id, params)
            self._enter(self.scope)

    async def end_run(self) -> None:
        """The cluster looked idle long enough: end the run (once, cluster-wide)."""
        try:
            await self.add_stats()
            state = await self.coordinator.state()
            if state.run is not None:
                stats = await self.coordinator.finish(state.run)
                if stats is not None:
                    await self._advance_recheck(state.run, stats)
                    await self._report(state.run, stats)
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

    async def _advance_recheck(self, run: Run, stats: dict[str, int]) -> None:
        """Move the re-check's state by an incremental run's findings; the next window goes
        into the run's counters (``recheck.NEXT_WINDOW``) for the report."""
        if not self.param_defaults.params(run.args).incremental:
            return
        state, _known = await self.coordinator.recheck_state()
        checked, found = recheck.findings(stats)
        after = recheck.advance(self.config.recheck, state, checked, found)
        await self.coordinator.keep_recheck_state(after)
        stats[recheck.NEXT_WINDOW] = int(after.window_hours * 3600)
        if after.window_hours != state.window_hours:
            logger.info(
                "Re-check window %.1f h -> %.1f h (%d unannounced edits in %d re-checks)",
                state.window_hours, after.window_hours, found, checked,
            )  # fmt: skip

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
        """One heartbeat: publish, read the cluster, adopt its run, add counters."""
        deltas = self.counters.take()
        try:
            self.state, bitmap = await self.coordinator.tick(
                self.window.unflushed(), deltas, snapshot=snapshot
            )
        except Exception as exc:
            if not transient(exc):
                raise
            self.state = None
            self.counters.restore(deltas)
            self.health.down(exc)
            return
        if bitmap is not None:
            self.known.replace(bitmap)
        if self.state.run is not None:
            self.adopt(self.state.run)
        self.health.up()

    async def add_stats(self) -> None:
        """Add this worker's counters to the run's."""
        deltas = self.counters.take()
        try:
            await self.coordinator.tick(None, deltas)
        except Exception:
            self.counters.restore(deltas)
            raise
