"""The site's request budget, applied at the moment a request goes on the wire.

Every HTTP request a worker sends (robots.txt included) first takes the cluster's next send
slot from Redis (``RedisFrontier.take_slot``): slots are spaced by the larger of
``1/CRAWL_RATE`` and robots.txt's Crawl-delay, for all workers together, and none falls inside
a ``Retry-After`` pause. Pacing here, in the download handler, rather than when a request is
leased, means no queue between the two (robots.txt, the downloader's own slots) can bunch
requests up. When Redis is unreachable, a worker paces itself at the budget's interval alone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

    from crawler.frontier.scheduler import TassScheduler


class BudgetedDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, sending each request only in a slot of the shared budget."""

    def _scheduler(self) -> TassScheduler | None:
        from crawler.frontier.scheduler import TassScheduler

        slot = getattr(self._crawler.engine, "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
        return scheduler if isinstance(scheduler, TassScheduler) else None

    async def download_request(self, request: Request) -> Response:
        scheduler = self._scheduler()
        if scheduler is not None and scheduler.queue is not None:
            budget = scheduler.config.budget
            try:
                wait = await scheduler.queue.take_slot(budget)
            except (RedisError, OSError):
                wait = budget.interval_ms / 1000
            if wait > 0:
                await asyncio.sleep(wait)
        return await super().download_request(request)
