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

A place given back is not sent at once: it goes with this worker's next ask (one round trip
for a leave and an enter, where each took its own), or alone ``LEAVE_DELAY`` seconds after
the first one waiting, whichever comes first. A place is so held up to ``LEAVE_DELAY`` longer
than its request, never shorter: the cluster is never over its concurrency, only under it by
that much.
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
LEAVE_DELAY = 0.05
"""Seconds a place given back waits for the worker's next ask to go with, at most."""


class SiteSlots:
    """One worker's requests at the site, counted against the cluster's concurrency."""

    def __init__(self, queue: RedisFrontier, budget: Budget, sender: str) -> None:
        self.queue = queue
        self.budget = budget
        self._tokens = (f"{sender}:{uuid.uuid4().hex[:8]}:{n}" for n in itertools.count())
        self.waits = 0
        """Asks that found no free place (a waiting request asks again)."""
        self._left: list[str] = []  # places given back, not sent yet
        self._leave_timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def enter(self) -> str | None:
        """Wait for a place at the site; its token (None: Redis unreachable, not counted)."""
        token = next(self._tokens)
        pause = POLL_MIN
        try:
            while await self._ask(token) >= 0:
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
        """The request ``token`` is done at the site: its place goes back with the next ask,
        or within ``LEAVE_DELAY`` (a place Redis never hears of lapses)."""
        if token is None:
            return
        self._left.append(token)
        if self._leave_timer is None:
            loop = asyncio.get_running_loop()
            self._leave_timer = loop.call_later(LEAVE_DELAY, self._send_left)

    async def _ask(self, token: str) -> int:
        left = self._take_left()
        try:
            return await self.queue.enter_site(self.budget, token, left)
        except BaseException:
            self._left[:0] = left  # not given back: they go with the next call, or alone
            if left and self._leave_timer is None:
                loop = asyncio.get_running_loop()
                self._leave_timer = loop.call_later(LEAVE_DELAY, self._send_left)
            raise

    def _take_left(self) -> list[str]:
        left, self._left = self._left, []
        if self._leave_timer is not None:
            self._leave_timer.cancel()
            self._leave_timer = None
        return left

    def _send_left(self) -> None:
        self._leave_timer = None
        left = self._take_left()
        if left:
            task = asyncio.get_running_loop().create_task(self._give_back(left))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _give_back(self, left: list[str]) -> None:
        if not left:
            return
        try:
            await self.queue.leave_site(*left)
        except Exception as exc:
            if not transient(exc):
                raise
