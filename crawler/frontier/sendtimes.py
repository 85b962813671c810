"""One worker's reserved send times of the cluster's request budget (Scrapy-free).

A worker reserves a few send times at once in Redis (``lua.SLOT``), as many as it has requests
waiting (one round trip for several requests), up to a second ahead. A reservation that a busy
event loop let slip by more than half an interval is dropped, not used late, so late requests
never bunch up. When Redis is unreachable, a worker paces itself at the budget's interval alone.
The download handler (``politeness``) waits here just before each request goes on the wire.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from crawler.frontier.health import transient

if TYPE_CHECKING:
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
        except Exception as exc:
            if not transient(exc):
                raise
            await asyncio.sleep(self.budget.interval_ms / 1000)
            self.reserved.append(time.monotonic())
            return
        self.calls += 1
        base = time.monotonic()
        if not reservation.times_ms:
            await asyncio.sleep(max(0.0, (reservation.retry_at_ms - reservation.now_ms) / 1000))
            return
        self.reserved.extend(base + (t - reservation.now_ms) / 1000 for t in reservation.times_ms)
