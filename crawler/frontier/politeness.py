"""The site's request budget, applied at the moment a request goes on the wire.

Every HTTP request a worker sends (robots.txt included) first asks Redis for leave to go
(``RedisFrontier.wait_for_slot``): it goes only when, for all workers together, no
``Retry-After`` pause holds, the last request left at least ``1/CRAWL_RATE`` (10% under
it, or robots.txt's Crawl-delay) ago, and fewer than ``CRAWL_RATE`` left in the last second;
the send is recorded in the same atomic call. Asking here, in the download handler, just
before the request goes on the wire, means no queue in between (robots.txt, the downloader's
own slots, a busy event loop) can bunch requests up. When Redis is unreachable, a worker
paces itself at the budget's interval alone.
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
                await scheduler.queue.wait_for_slot(budget, scheduler.worker_id)
            except (RedisError, OSError):
                await asyncio.sleep(budget.interval_ms / 1000)
        return await super().download_request(request)
