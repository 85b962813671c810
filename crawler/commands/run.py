"""``scrapy run abandon``: end the open run now, whatever it still has to do.

A run stays open in Redis until the whole cluster has done its work, so a crawl that stopped
half-way (every worker killed, a crawl that failed at start) leaves its run for the next
``scrapy crawl tass`` to join and finish. A crawl started with explicit arguments that differ
from the open run's is refused (``crawler.errors.RunConflict``). To go on, either:

- *finish* the open run: ``scrapy crawl tass`` without arguments joins it with the run's own
  arguments and exits with its outcome once it has ended; or
- *abandon* it: ``scrapy run abandon`` (``--run ID`` to abandon only that run). The run is
  ended at once as ``failed`` with the reason ``abandoned: ...``, in Redis (its workers, if
  any are still at it, drop what they hold and exit with that outcome) and in ``runs``. What
  it had not fetched yet is dropped; its articles' seen bits are cleared, so later runs may
  queue them again. Its high-water marks do not move. Dead letters (``scrapy replay``) and
  ``failures`` are kept.

Exit code 0 once abandoned; ``EXIT_CONFIG`` (78) when there is no such open run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from typing import ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler import defaults
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.frontier.report import conclude_run, store_run_report
from crawler.frontier.run import RunCoordinator
from crawler.mongo import MongoConfig
from crawler.outcome import EXIT_CONFIG, EXIT_OK
from crawler.urls import SiteUrls

ACTIONS = ("abandon",)


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "abandon [--run ID]"

    def short_desc(self) -> str:
        return "Abandon the open run (finish it instead with: scrapy crawl tass)"

    def long_desc(self) -> str:
        return __doc__ or ""

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--run", default="", help="abandon only the run with this id")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args != ["abandon"]:
            raise UsageError(f"expected one action: {', '.join(ACTIONS)}")
        try:
            url = redis_url(self.settings)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        code, message = asyncio.run(self.abandon(url, opts.run))
        print(message)
        self.exitcode = code

    async def abandon(self, url: str, run_id: str) -> tuple[int, str]:
        assert self.settings is not None
        settings = self.settings
        keys = FrontierKeys(settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
        urls = SiteUrls(settings.get("TASS_BASE_URL", defaults.TASS_BASE_URL))
        client = open_redis(url)
        try:
            coordinator = RunCoordinator(client, keys, worker_id="scrapy-run-abandon")
            found = await coordinator.abandon(run_id)
            if found is None:
                which = f"run {run_id} is not the open run" if run_id else "no run is open"
                return EXIT_CONFIG, f"nothing abandoned: {which}"
            run, left, stats = found
            reason = (
                f"abandoned: by 'scrapy run abandon' with {left} requests not done "
                "(dropped; later runs may find them again)"
            )
            report, verdict = conclude_run(settings, run, stats, datetime.now(UTC), [reason])
            record = {**verdict.to_dict(), "ended_at": datetime.now(UTC).isoformat()}
            await coordinator.publish_outcome(run, record)
            cleared = await coordinator.forget_abandoned(
                lambda member: urls.article_id(str(json.loads(member).get("url", "")))
            )
        finally:
            await client.aclose()
        end = time.monotonic() + MongoConfig.from_settings(settings).retry_deadline
        stored = await store_run_report(settings, report, lambda: end)
        return EXIT_OK, (
            f"run {run.id} (started {run.started_at}) abandoned: {left} requests dropped, "
            f"{cleared} articles may be queued again by later runs; {stored['summary']}"
        )
