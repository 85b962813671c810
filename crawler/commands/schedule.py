"""``scrapy schedule``: the compose ``scheduler`` service; asks the workers for a crawl on
``CRAWL_SCHEDULE`` (see ``crawler.schedule``). ``--once`` makes one decision and exits."""

from __future__ import annotations

import argparse
import asyncio
import logging
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
        logger.info("Scheduling crawls on %r (UTC)", schedule.expression)
        try:
            while True:
                # Redis away: retry every 10 s, never die.
                decision = await retry(
                    lambda: scheduler.step(datetime.now(UTC)),
                    what="scheduling step",
                    retry_on=transient,
                    initial=10.0,
                    maximum=10.0,
                    jitter=False,
                )
                if once:
                    return decision
                wait = (decision.wake_at - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(max(1.0, wait))
        finally:
            await client.aclose()
