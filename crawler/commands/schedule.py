"""``scrapy schedule``: the compose ``scheduler`` service; asks the workers for a crawl on
``CRAWL_SCHEDULE`` (see ``crawler.schedule``) and logs how every run went (its outcome and
reasons, as the workers publish them). ``--once`` makes one decision and exits.

SIGTERM (``docker compose stop``) or SIGINT ends it at once with exit status 0, also while
it waits for the next due time or for Redis to come back; a decision under way is finished
first, so a requested run is always recorded as handled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime
from typing import ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler import defaults
from crawler.frontier.health import transient
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.frontier.run import RunCoordinator
from crawler.retrying import retry
from crawler.schedule import CronSchedule, Decision, ScheduleError, Scheduler

logger = logging.getLogger(__name__)


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "INFO"}

    def short_desc(self) -> str:
        return "Request a crawl from the workers whenever CRAWL_SCHEDULE is due"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--once", action="store_true", help="decide once, then exit")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            schedule = CronSchedule(self.settings.get("CRAWL_SCHEDULE"))
            url = redis_url(self.settings)
        except (ScheduleError, ValueError) as exc:
            raise UsageError(str(exc), print_help=False) from exc
        keys = FrontierKeys(self.settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
        decision = asyncio.run(self.loop(schedule, url, keys, once=opts.once))
        if opts.once and decision is not None:
            print(f"{decision.action} {decision.due.isoformat() if decision.due else ''}")

    async def loop(
        self, schedule: CronSchedule, url: str, keys: FrontierKeys, *, once: bool
    ) -> Decision | None:
        client = open_redis(url)
        scheduler = Scheduler(schedule, RunCoordinator(client, keys, worker_id="scheduler"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, _stopping, sig, stop)
        logger.info("Scheduling crawls on %r (UTC)", schedule.expression)
        try:
            while not stop.is_set():
                try:
                    # Redis away: retry every 10 s, never die; a stop ends the wait at once.
                    decision = await retry(
                        lambda: scheduler.decide(datetime.now(UTC)),
                        what="Scheduling step",
                        retry_on=transient,
                        initial=10.0,
                        maximum=10.0,
                        jitter=False,
                        sleep=lambda seconds: _sleep_unless_stopped(seconds, stop),
                    )
                except _Stopped:
                    break
                if once:
                    return decision
                # Awake at least every poll, to log how the runs went as they end.
                wait = (decision.wake_at - datetime.now(UTC)).total_seconds()
                await _sleep(max(1.0, min(wait, scheduler.poll_seconds)), stop)
            logger.info("Scheduler stopped")
            return None
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            await client.aclose()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stopping(sig: signal.Signals, stop: asyncio.Event) -> None:
    logger.info("Received %s: stopping the scheduler", sig.name)
    stop.set()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class _Stopped(Exception):
    """The scheduler was asked to stop while it waited to retry a step."""


async def _sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    await _sleep(seconds, stop)
    if stop.is_set():
        raise _Stopped
