"""The cluster-wide progress line, in place of Scrapy's per-process ``LogStats``.

Every ``LOGSTATS_INTERVAL`` seconds (Scrapy's setting, 60 by default; 0 turns it off) each
worker logs one line for the whole cluster (``crawler.status.progress_line``): what the run
has fetched, stored and failed, the cluster's rate against the budget, the queue, an ETA, and
this worker's share. The line comes from one read of Redis (``crawler.status.read_status``);
with Redis away it says so instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler import defaults
from crawler.frontier.health import transient
from crawler.frontier.scheduler import frontier_of
from crawler.status import progress_line

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ClusterProgressExtension:
    """Logs the cluster's progress every interval (module docstring)."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = crawler.settings.getfloat("LOGSTATS_INTERVAL", defaults.LOGSTATS_INTERVAL)
        if interval < 0:
            raise ValueError(f"LOGSTATS_INTERVAL={interval!r}: must be >= 0 seconds")
        if not interval:
            raise NotConfigured("LOGSTATS_INTERVAL is 0: no progress line")
        extension = cls(crawler, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def spider_closed(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def line(self) -> str | None:
        """The progress line now (None before the frontier is open)."""
        frontier = frontier_of(self.crawler)
        if frontier is None:
            return None
        try:
            status = await frontier.status()
        except Exception as exc:
            if not transient(exc):
                raise
            return f"Cluster progress unknown: Redis unreachable ({exc})"
        return progress_line(status, frontier.worker_id)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            text = await self.line()
            if text is not None:
                logger.info(text)
