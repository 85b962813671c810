"""The site's request budget, applied at the moment a request goes on the wire.

Every HTTP request a worker sends (robots.txt included) waits for a send time reserved in
Redis for the whole cluster (``lua.SLOT``): none inside a ``Retry-After`` pause, each at
least ``1/CRAWL_RATE`` (10% under it, or robots.txt's Crawl-delay) after the one before,
never more than ``CRAWL_RATE`` in any second. A worker reserves a few send times at once, as
many as it has requests waiting (one round trip for several requests), up to a second ahead.
A reservation that a busy event loop let slip by more than half an interval is dropped, not
used late, so late requests never bunch up. Waiting here, in the download handler, just
before the request goes on the wire, means no queue in between (robots.txt, the
downloader's own slots) can bunch requests up either. When Redis is unreachable, a worker
paces itself at the budget's interval alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler

from crawler.frontier.scheduler import frontier_scheduler

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

    from crawler.frontier.queue import Budget, RedisFrontier

MAX_RESERVE = 8


class SendTimes:
    """One worker's reserved send times, shared by its concurrent downloads."""

    def __init__(self, queue: RedisFrontier, budget: Budget, sender: str) -> None:
        self.queue = queue
        self.budget = budget
        self.sender = sender
        self.reserved: deque[float] = deque()  # local monotonic seconds
        self.waiting = 0
        self.lock = asyncio.Lock()
        self.calls = 0

    async def acquire(self) -> None:
        """Return at this request's send time."""
        stale = max(self.budget.interval_ms / 2000, 0.005)
        self.waiting += 1
        try:
            while True:
                now = time.monotonic()
                while self.reserved and self.reserved[0] < now - stale:
                    self.reserved.popleft()
                if self.reserved:
                    wait = self.reserved.popleft() - now
                    if wait > 0:
                        await asyncio.sleep(wait)
                    return
                async with self.lock:
                    if self.reserved:
                        continue  # another download fetched some meanwhile
                    await self._reserve()
        finally:
            self.waiting -= 1

    async def _reserve(self) -> None:
        try:
            reservation = await self.queue.reserve_sends(
                self.budget, self.sender, min(MAX_RESERVE, max(1, self.waiting))
            )
        except (RedisError, OSError):
            await asyncio.sleep(self.budget.interval_ms / 1000)
            self.reserved.append(time.monotonic())
            return
        self.calls += 1
        base = time.monotonic()
        if not reservation.times_ms:
            await asyncio.sleep(max(0.0, (reservation.retry_at_ms - reservation.now_ms) / 1000))
            return
        self.reserved.extend(base + (t - reservation.now_ms) / 1000 for t in reservation.times_ms)


class BudgetedDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, sending each request only at a time the budget allows."""

    _send_times: SendTimes | None = None

    async def download_request(self, request: Request) -> Response:
        scheduler = frontier_scheduler(self._crawler)
        if scheduler is not None and scheduler.queue is not None:
            if self._send_times is None:
                self._send_times = SendTimes(
                    scheduler.queue, scheduler.config.budget, scheduler.worker_id
                )
            await self._send_times.acquire()
        return await super().download_request(request)
