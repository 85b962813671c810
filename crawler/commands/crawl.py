"""``scrapy crawl tass``: Scrapy's crawl command, with exit codes that tell how the run went.

In one-shot mode (``-a mode=crawl``, the default) the exit code is the run's outcome
(``crawler.outcome``): 0 only when the run ended ``ok``; ``EXIT_FAILED`` (3) or
``EXIT_DEGRADED`` (4) otherwise, so cron, systemd and Kubernetes see a bad night. A worker that
did not end the run itself exits with the outcome the ending worker published. A crawl stopped
by a signal before its run ended exits ``EXIT_INTERRUPTED`` (130): with one SIGINT/SIGTERM it
first hands its leases back (as every closing worker does); with a second one Scrapy stops at
once, and the leases it still holds are handed back here before the process exits. In worker
mode (``-a mode=worker``) a stop is the service's normal end: exit 0.

An error that stops the crawl while it starts is shown as one line, not as an asyncio
traceback: a malformed setting or argument, refused credentials, arguments that differ from
the open run's (``EXIT_CONFIG``, 78), a server unreachable before the run began
(``EXIT_UNAVAILABLE``, 69) (``crawler.errors``); anything else keeps its traceback (exit 1).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler import redact
from crawler.errors import exit_for
from crawler.frontier.scheduler import frontier_of
from crawler.outcome import EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("name one spider: scrapy crawl tass")
        redact.install()
        assert self.crawler_process is not None
        crawler = self._create_crawler(args[0])
        errors: list[BaseException] = []
        started: Any = self.crawler_process.crawl(crawler, **opts.spargs)
        if isinstance(started, asyncio.Future):
            started.add_done_callback(lambda task: _keep_error(task, errors))
        else:  # the Deferred of the plain CrawlerProcess
            started.addErrback(lambda failure: errors.append(failure.value))
        self.crawler_process.start()
        self.exitcode = self.exit_code(crawler, errors)

    def exit_code(self, crawler: Crawler, errors: list[BaseException]) -> int:
        """The process's exit code once the crawl is over (module docstring)."""
        for error in errors:
            known = exit_for(error)
            if known is None:
                logger.error("The crawl stopped on an unexpected error", exc_info=error)
                return 1
            code, message = known
            logger.error("tass-crawler: %s", message)
            return code
        frontier = frontier_of(crawler)
        if frontier is None:
            return 1 if self.crawler_process and self.crawler_process.bootstrap_failed else 0
        released = frontier.window.release_blocking(frontier.config.redis_url)
        if released:  # a forced stop: the scheduler never closed, or its writes never went
            logger.warning("Forced stop: handed %d leases back to the queue", released)
        outcome = frontier.lifecycle.outcome
        if frontier.lifecycle.mode == "worker":
            return EXIT_OK
        if outcome is None:
            logger.error("The crawl was stopped before its run ended: exit %d", EXIT_INTERRUPTED)
            return EXIT_INTERRUPTED
        return outcome.exit_code


def _keep_error(task: asyncio.Future[Any], errors: list[BaseException]) -> None:
    """Take the crawl task's error (so asyncio never reports it as "never retrieved")."""
    if not task.cancelled() and task.exception() is not None:
        errors.append(task.exception())  # type: ignore[arg-type]
