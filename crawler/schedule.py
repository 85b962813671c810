"""The nightly schedule: when a crawl is due, and asking the workers for it exactly once.

``Scheduler.step(now)`` is the whole decision, with the clock passed in so it can be tested:
- the latest due time at or before ``now`` (from ``CRAWL_SCHEDULE``, a cron expression in
  UTC) that has not been handled yet means a run is due; several missed due times (the stack
  was down) coalesce into one run;
- a run still going, or already requested, is not started twice: the due time stays unhandled
  and the run starts once the current one has ended;
- otherwise a run request goes to Redis for the workers (``-a mode=worker``) and the due time
  is recorded as handled.
A fresh install with no recorded due time starts a run at once.
"""

from __future__ import annotations

import json
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

    async def last_handled(self) -> datetime | None:
        raw = await self.coordinator.client.hget(self.state_key, "last_handled")
        return datetime.fromisoformat(raw.decode()) if isinstance(raw, bytes) else None

    async def _busy(self) -> bool:
        current = await self.coordinator.current()
        return current is not None or await self.coordinator.requested_runs() > 0

    async def step(self, now: datetime) -> Decision:
        due = self.schedule.previous(now)
        last = await self.last_handled()
        wake = min(self.schedule.next(now), now + timedelta(seconds=self.poll_seconds))
        if last is not None and due <= last:
            return Decision("idle", None, self.schedule.next(now))
        if await self._busy():
            logger.info("Crawl due at %s waits: a run is still going", due.isoformat())
            return Decision("waiting", due, wake)
        args = {**self.run_args, "scheduled_for": due.isoformat()}
        await self.coordinator.request_run(args)
        await self.coordinator.client.hset(
            self.state_key,
            mapping={"last_handled": due.isoformat(), "last_request": json.dumps(args)},
        )
        logger.info("Requested the crawl due at %s", due.isoformat())
        return Decision("started", due, self.schedule.next(now))
