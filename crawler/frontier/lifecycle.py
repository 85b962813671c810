"""The run lifecycle of one worker: join or seed a run, stay while the cluster works, end it.

Scrapy-free: the scheduler adapter hands it the spider's seeds as queue pushes, a way to wake
the engine and a way to write the run report; the engine's idle signal asks ``keep_open``.

- ``crawl`` mode (``scrapy crawl tass``): on opening, join the current run or begin one (the
  run record and its seeds are written in one script call); exit once the whole cluster has
  looked idle (nothing pending, leased or delayed, no worker holding unflushed work) and its
  run has ended. Idle means for ``TASS_IDLE_GRACE`` seconds, which lets the other workers'
  unflushed work reach Redis with their heartbeats; to end a run, a worker with no other live
  worker needs only one look at the cluster taken since it went idle. The worker whose
  ``finish`` succeeds ends the run, decides its outcome (``crawler.outcome``), publishes it in
  Redis and writes the run report (collection ``runs``, and the log); every other worker of
  the run reads the outcome it published (``outcome``), so each one exits with it.
- ``worker`` mode (``-a mode=worker``, the compose workers): never exit; between runs, take a
  run request pushed by ``scrapy schedule`` and begin it.

Run parameters are an immutable value owned here: each run the worker works on becomes a
``RunScope`` (the run's id, its ``CrawlParams`` and the run's counters), handed to the spider
through the ``RunSpider`` protocol. A callback reads the scope it started with; a later run
gets a new scope and never changes the old one. An incremental run's parameters include its
re-check (``recheck.plan``: the sample's share and the windows), fixed by the worker that
begins it from the state earlier runs left; the worker that ends it moves that state by the
run's findings (``recheck.advance``) before the report is written.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from crawler import defaults
from crawler.errors import RunConflict
from crawler.frontier import recheck
from crawler.frontier.counters import Counters
from crawler.frontier.health import transient
from crawler.outcome import FAILED, Verdict
from crawler.retrying import retry

if TYPE_CHECKING:
    from crawler.frontier.config import FrontierConfig
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


@dataclass(frozen=True, slots=True)
class RunScope:
    """What a spider works with during one run: its id, its parameters and what it counts into
    the run's counters (the run report; this worker's stats too)."""

    run_id: str
    params: CrawlParams
    counters: Counters = field(default_factory=Counters, compare=False)


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

    def asked(self, source: Any) -> str:
        """The URL a request's (or its response's) outcome is recorded under: what the
        frontier asked for, before any redirect, canonical where it can be."""
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
        recover: Callable[[], Awaitable[list[Push]]],
        enter: Callable[[RunScope], None],
        conclude: Callable[
            [Run, dict[str, int], list[str]], Awaitable[tuple[dict[str, Any], Verdict]]
        ],
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
        self._recover = recover
        self._enter = enter
        self._conclude = conclude
        self._report = report
        self._wake = wake
        self.scope: RunScope | None = None
        self._run: Run | None = None
        self._dropped: str | None = None
        """The run this worker found lost or ended under it (handled once)."""
        self.state: ClusterState | None = None
        """The last look at the cluster: each heartbeat that reads it puts a new one here."""
        self.idle_since: float | None = None
        self._idle_look: ClusterState | None = None
        """``state`` when this worker went idle (``idle_since``)."""
        self.finished = False
        self.ending = False
        self.outcome: Verdict | None = None
        """How the last run this worker worked on ended (None: it has not ended)."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def max_articles(self) -> int:
        return self.scope.params.max_articles if self.scope is not None else 0

    async def open(self, args: Mapping[str, Any]) -> None:
        if self.mode == "crawl":
            await retry(
                lambda: self.begin_run(args, explicit=True),
                **self.health.retrying("begin the run"),
            )
        self._task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def close(self) -> None:
        # A cancellation that lands inside a Redis call can come back out of it as a connection
        # error, which ``tick`` takes for an outage: the loop also stops on its own (seen: a
        # heartbeat loop that never ended, and close() with it).
        self._closing = True
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
    async def begin_run(self, args: Mapping[str, Any], *, explicit: bool = False) -> None:
        """Begin a run with ``args``, or join the one going. Seeds are built with the requested
        parameters; if another run is going, they are not queued and this worker adopts that
        run's parameters instead, unless ``explicit`` (a crawl's own ``-a``) arguments differ
        from the run's: then ``RunConflict`` (never a silent join)."""
        params = self.param_defaults.params(args)
        if params.incremental:
            # The run's window (``since``) and its re-check count back from the site's clock.
            state, known = await self.coordinator.recheck_state()
            clock = recheck.site_clock(state)
            plan = recheck.plan(self.config.recheck, state, known, clock)
            params = self.param_defaults.params(
                {**args, "recheck": plan.to_args()}, now=datetime.fromtimestamp(clock, UTC)
            )
        seeds = self._seeds(params)
        recovered = await self._recover()
        run, seeder = await self.coordinator.begin(
            params.to_args(), seeds + recovered, params.max_articles
        )
        if not seeder and explicit:
            refuse_conflict(args, params, run, self.param_defaults.params(run.args))
        self.adopt(run)
        self.finished = False
        self.idle_since = None
        if seeder:
            self.counters.count("tass/run/seeds", len(seeds))
            logger.info("Run %s begins; this worker queued its %d seeds", run.id, len(seeds))
            if recovered:
                self.counters.count("tass/run/retries_recovered", len(recovered))
                logger.warning(
                    "Run %s: %d retries that Redis no longer holds are queued again from "
                    "MongoDB's failures", run.id, len(recovered),
                )  # fmt: skip
        else:
            logger.info("Joining run %s (started %s)", run.id, run.started_at)
        self._wake()

    def adopt(self, run: Run) -> None:
        """Work on ``run`` (a new scope)."""
        if self.scope is None or self.scope.run_id != run.id:
            params = self.param_defaults.params(run.args)
            if self.scope is None or params != self.scope.params:
                logger.info("Run parameters: %s", params.to_args())
            self.scope = RunScope(run.id, params, counters=self.counters)
            self._run = run
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
        """This worker ended ``run``: the re-check's state moved by its findings, its outcome,
        published for the other workers first (they wait for it), then its report (``runs`` and
        the log)."""
        await self._advance_recheck(run, stats)
        report, verdict = await self._conclude(run, stats, [])
        record = {**verdict.to_dict(), "ended_at": datetime.now(UTC).isoformat()}
        await retry(
            lambda: self.coordinator.publish_outcome(run, record),
            **self.health.retrying("publish the run's outcome"),
        )
        self.outcome = verdict
        await self._report(run, report, verdict)

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
        if state is None or not (
            state.idle
            and self.health.ok
            and not self.window.unflushed()
            and not self.window.holding()
        ):
            self.idle_since = None
            return True
        now = time.monotonic() if now is None else now
        if self.idle_since is None:
            self.idle_since, self._idle_look = now, state
        waited = now - self.idle_since >= self.config.idle_grace
        # A run to end, and nobody else's unflushed work can be on its way: one look at the
        # cluster taken since this worker went idle is enough (the grace waits for the other
        # workers' heartbeats). With no run (a standing worker), the grace paces its look for
        # a run request.
        alone = state.run is not None and state.peers == 0 and state is not self._idle_look
        if (waited or alone) and not self.ending:
            self.ending = True
            asyncio.get_running_loop().create_task(self.end_run())
        return True

    # --- heartbeat --------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        ticks = 0
        while not self._closing:
            await self.tick(snapshot=ticks % SNAPSHOT_EVERY == 0)
            ticks += 1
            self._wake()
            await asyncio.sleep(self.config.heartbeat)

    async def tick(self, *, snapshot: bool = False) -> None:
        """One heartbeat: publish, read the cluster, adopt its run, add counters;
        notice when Redis lost the state of the run this worker is in (``lose``)."""
        deltas = self.counters.take()
        mine = self.scope.run_id if self.scope is not None and self.outcome is None else None
        try:
            self.state, bitmap = await self.coordinator.tick(
                self.window.unflushed(), deltas, snapshot=snapshot, run_id=mine
            )
        except Exception as exc:
            if not transient(exc):
                raise
            self.state = None
            self.counters.restore(deltas)
            self.health.down(exc)
            return
        self.health.up()
        lost = self.state.lost(self.coordinator.epoch, mine) if mine is not None else None
        if lost is not None:
            await self.lose(lost)
            return
        if mine is not None and self.state.ended and self.state.epoch != self.coordinator.epoch:
            await self.ended_elsewhere(mine)
            return
        if bitmap is not None:
            self.known.replace(bitmap)
        if self.state.run is not None and not self.finished:
            if self.scope is None or self.scope.run_id != self.state.run.id:
                self.coordinator.epoch = self.state.epoch
            self.adopt(self.state.run)

    async def lose(self, reason: str) -> None:
        """Redis lost the state of this worker's run: say so loudly, record the run as failed
        with the reason (in Redis, for the other workers and ``scrapy status``, and in
        ``runs``), drop what this worker held of it and forget its copy of the seen articles.
        Its queue writes stay refused (their epoch is gone). A crawl ends here; a standing
        worker waits for the next run, which starts from a clean state (``lua.BEGIN``)."""
        assert self._run is not None
        run = self._run
        if self._dropped == run.id:
            return  # a heartbeat under way already found it
        self._dropped = run.id
        logger.critical(
            "REDIS STATE LOST: %s. Run %s is recorded as failed; this worker drops the %d "
            "requests it held of it. The next run starts from a clean state (scrapy crawl "
            "tass, or the schedule); URLs that failed are still in MongoDB's failures",
            reason, run.id, len(self.window.held()),
        )  # fmt: skip
        self.window.abandon()
        self.known.replace(b"")
        report, verdict = await self._conclude(run, {}, [reason])
        record = {**verdict.to_dict(), "ended_at": datetime.now(UTC).isoformat()}
        await retry(
            lambda: self.coordinator.publish_outcome(run, record),
            **self.health.retrying("publish the lost run's outcome"),
        )
        self.outcome = verdict
        await self._report(run, report, verdict)
        if self.mode == "crawl":
            self.finished = True
        self._wake()

    async def ended_elsewhere(self, run_id: str) -> None:
        """Run ``run_id`` was ended under this worker by someone else: abandoned (``scrapy run
        abandon``), or found lost by another worker first (its record of the failed run is
        all Redis holds of it). Drop what this worker held of it (its writes are refused: the
        epoch changed) and end with the outcome published."""
        if self._dropped == run_id:
            return  # a heartbeat under way already found it
        self._dropped = run_id
        held = len(self.window.held())
        self.window.abandon()
        self.known.replace(b"")
        await self._learn_outcome(run_id)
        assert self.outcome is not None
        lost = [r for r in self.outcome.reasons if r.startswith("redis_state_lost")]
        if lost:
            logger.critical(
                "REDIS STATE LOST: %s (found by another worker). Run %s is recorded as failed; "
                "this worker drops the %d requests it held of it", lost[0], run_id, held,
            )  # fmt: skip
        else:
            logger.warning(
                "Run %s was ended under this worker (%s): it drops the %d requests it held",
                run_id, self.outcome.summary(), held,
            )  # fmt: skip
        if self.mode == "crawl":
            self.finished = True
        self._wake()

    async def add_stats(self) -> None:
        """Add this worker's counters to the run's."""
        deltas = self.counters.take()
        try:
            await self.coordinator.tick(None, deltas)
        except Exception:
            self.counters.restore(deltas)
            raise


def refuse_conflict(
    args: Mapping[str, Any], requested: CrawlParams, run: Run, open_params: CrawlParams
) -> None:
    """``RunConflict`` when the explicit ``args`` differ from the open ``run``'s: the message
    says what differs and how to finish or abandon the open run."""
    differ = requested.differences(args, open_params)
    if differ:
        raise RunConflict(
            f"run {run.id} (started {run.started_at}, {open_params.describe()}) is still open, "
            f"and these arguments differ from its: {'; '.join(differ)}. Finish it first with "
            "'scrapy crawl tass' without arguments (it joins the open run and exits when the "
            "run ends), or abandon it with 'scrapy run abandon' (what it has not fetched yet "
            "is dropped, and may be found again by later runs); then start this crawl again"
        )
