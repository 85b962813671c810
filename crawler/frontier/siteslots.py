"""Requests at the site at once, for the whole cluster (Scrapy-free).

``CRAWL_CONCURRENCY`` bounds the requests *at the site*: each request asks for a place
(``lua.ENTER_SITE``) just before it is sent and gives it back once it is answered or has
failed (``leave``). Leases a worker holds ready and requests waiting in its downloader are not
at the site and do not count, so one worker's pre-leased buffer cannot take the budget from
another: the requests waiting for a place, of every worker, form one line in Redis and get in
in the order they first asked. A place of a worker that died lapses after
``Budget.site_ttl_ms``; a waiter that stopped asking leaves the line after
``Budget.stale_ms``. With Redis unreachable a request goes ahead (its worker's own
``CONCURRENT_REQUESTS`` still bounds it), as ``sendtimes`` then paces a worker alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from typing import TYPE_CHECKING

from crawler.frontier.health import transient

if TYPE_CHECKING:
    from crawler.frontier.queue import Budget, RedisFrontier

POLL_MIN = 0.01
POLL_MAX = 0.2
"""Seconds between two asks of a waiting request: doubling from POLL_MIN up to POLL_MAX (its
place in the line is kept meanwhile)."""


class SiteSlots:
    """One worker's requests at the site, counted against the cluster's concurrency."""

    def __init__(self, queue: RedisFrontier, budget: Budget, sender: str) -> None:
        self.queue = queue
        self.budget = budget
        self._tokens = (f"{sender}:{uuid.uuid4().hex[:8]}:{n}" for n in itertools.count())
        self.waits = 0
        """Asks that found no free place (a waiting request asks again)."""

    async def enter(self) -> str | None:
        """Wait for a place at the site; its token (None: Redis unreachable, not counted)."""
        token = next(self._tokens)
        pause = POLL_MIN
        try:
            while await self.queue.enter_site(self.budget, token) >= 0:
                self.waits += 1
                await asyncio.sleep(pause)
                pause = min(POLL_MAX, pause * 2)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.queue.leave_site(token)  # out of the line
            raise
        except Exception as exc:
            if not transient(exc):
                raise
            return None
        return token

    async def leave(self, token: str | None) -> None:
        """The request ``token`` is done at the site (a place Redis never hears of lapses)."""
        if token is None:
            return
        try:
            await self.queue.leave_site(token)
        except Exception as exc:
            if not transient(exc):
                raise
