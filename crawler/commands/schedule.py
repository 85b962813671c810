"""``scrapy schedule``: the compose ``scheduler`` service; asks the workers for a crawl on
``CRAWL_SCHEDULE`` (see ``crawler.schedule``). ``--once`` makes one decision and exits."""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import redis_from_settings
from crawler.frontier.run import RunCoordinator
from crawler.schedule import CronSchedule, Scheduler, ScheduleError

logger = logging.getLogger(__name__)


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_LEVEL": "INFO"}

    def short_desc(self) -> str:
        return "Request a crawl from the workers whenever CRAWL_SCHEDULE is due"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--once", action="store_true", help="decide once, then exit")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            schedule = CronSchedule(self.settings.get("CRAWL_SCHEDULE"))
            server = redis_from_settings(self.settings)
        except (ScheduleError, ValueError) as exc:
            raise UsageError(str(exc), print_help=False) from exc
        keys = FrontierKeys(self.settings.get("TASS_REDIS_PREFIX", "tass"))
        scheduler = Scheduler(schedule, RunCoordinator(server, keys, worker_id="scheduler"))
        logger.info("Scheduling crawls on %r (UTC)", schedule.expression)
        while True:
            now = datetime.now(UTC)
            try:
                decision = scheduler.step(now)
            except Exception:  # Redis away: try again shortly, never die
                logger.exception("Scheduling step failed; retrying in 10 s")
                time.sleep(10)
                continue
            if opts.once:
                print(f"{decision.action} {decision.due.isoformat() if decision.due else ''}")
                return
            time.sleep(max(1.0, (decision.wake_at - datetime.now(UTC)).total_seconds()))
