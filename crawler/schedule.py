"""The nightly schedule: when a crawl is due, and asking the workers for it exactly once.

``Scheduler.step(now)`` is the whole decision, with the clock passed in so it can be tested:
- the latest due time at or before ``now`` (from ``CRAWL_SCHEDULE``, a cron expression in
  UTC) that has not been handled yet means a run is due; several missed due times (the stack
  was down) coalesce into one run;
- a run still going, or already requested, is not started twice: the due time stays unhandled
  and the run starts once the current one has ended;
- otherwise a run request goes to Redis for the workers (``-a mode=worker``) and the due time
  is recorded as handled.
The decision is one script call (``lua.REQUEST_RUN``), so two schedulers (a second replica, an
overlapping restart) stepping at the same moment never request two runs. ``log_outcomes`` logs
how each run ended (``crawler.outcome``), from the outcomes the workers publish in Redis.
A fresh install with no recorded due time starts a run at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter

if TYPE_CHECKING:
    from crawler.frontier.run import RunCoordinator

logger = logging.getLogger(__name__)


class ScheduleError(ValueError):
    """CRAWL_SCHEDULE is not a valid cron expression."""


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A cron expression evaluated in UTC."""

    expression: str

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.expression):
            raise ScheduleError(
                f"CRAWL_SCHEDULE={self.expression!r} is not a cron expression "
                "(five fields, e.g. '0 2 * * *' for 02:00 UTC every day)"
            )

    def previous(self, now: datetime) -> datetime:
        """The latest due time at or before ``now``."""
        now = now.astimezone(UTC)
        if croniter.match(self.expression, now.replace(second=0, microsecond=0)):
            return now.replace(second=0, microsecond=0)
        return croniter(self.expression, now).get_prev(datetime).astimezone(UTC)

    def next(self, now: datetime) -> datetime:
        """The first due time after ``now``."""
        return croniter(self.expression, now.astimezone(UTC)).get_next(datetime).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one step did: ``started``, ``waiting`` (a run is going) or ``idle``."""

    action: str
    due: datetime | None
    wake_at: datetime


class Scheduler:
    """Turns due times into run requests; its state lives in Redis with the frontier."""

    def __init__(
        self,
        schedule: CronSchedule,
        coordinator: RunCoordinator,
        run_args: dict[str, Any] | None = None,
        poll_seconds: float = 30.0,
    ) -> None:
        self.schedule = schedule
        self.coordinator = coordinator
        self.run_args = run_args or {}
        self.poll_seconds = poll_seconds
        self.state_key = coordinator.keys.schedule_state

    async def step(self, now: datetime) -> Decision:
        """Ask for the run due at ``now`` if it is (module docstring): one script call, so two
        schedulers stepping at once never ask twice."""
        due = self.schedule.previous(now)
        wake = min(self.schedule.next(now), now + timedelta(seconds=self.poll_seconds))
        args = {**self.run_args, "scheduled_for": due.isoformat()}
        action = await self.coordinator.request_scheduled_run(due, args)
        if action == "idle":
            return Decision("idle", None, self.schedule.next(now))
        if action == "waiting":
            logger.info("Crawl due at %s waits: a run is still going", due.isoformat())
            return Decision("waiting", due, wake)
        logger.info("Requested the crawl due at %s", due.isoformat())
        return Decision("started", due, self.schedule.next(now))

    async def decide(self, now: datetime) -> Decision:
        """One pass of the scheduler: log the runs that ended, then ``step``."""
        await self.log_outcomes()
        return await self.step(now)

    async def log_outcomes(self) -> list[dict[str, Any]]:
        """Log how every run that ended since the last one logged went (its outcome and
        reasons), oldest first; a run whose outcome is not published yet, and those after it,
        wait for the next call."""
        client = self.coordinator.client
        raw = await client.hget(self.state_key, "last_outcome_ms")
        logged = int(raw) if raw else 0
        done: list[dict[str, Any]] = []
        for ended in await self.coordinator.recent_outcomes():
            if ended["ended_ms"] <= logged:
                continue
            if ended.get("outcome") is None:
                break
            reasons = "; ".join(ended.get("reasons") or []) or "no reasons"
            emit = {"ok": logger.info, "degraded": logger.warning}.get(
                ended["outcome"], logger.error
            )
            emit("Run %s ended %s: %s", ended.get("id"), ended["outcome"], reasons)
            done.append(ended)
        if done:
            await client.hset(self.state_key, "last_outcome_ms", done[-1]["ended_ms"])
        return done
