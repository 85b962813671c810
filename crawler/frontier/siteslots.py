"""One worker's requests at the site: places and send times of the cluster's budget (Scrapy-free).

Every HTTP request a worker sends waits here, in the download handler (``politeness``), for a
*place* and a *send time*, both asked for in one ``lua.SITE`` call:

- *Places.* ``CRAWL_CONCURRENCY`` bounds the requests *at the site* for the whole cluster: a
  request holds a place from just before it is sent until it is answered or has failed
  (``leave``). Leases a worker holds ready and requests waiting in its downloader are not at
  the site and do not count, so one worker's pre-leased buffer cannot take the budget from
  another: the requests waiting for a place, of every worker, form one line in Redis and get
  in in the order they first asked. A place of a worker that died lapses after
  ``Budget.site_ttl_ms``; a waiter that stopped asking leaves the line after
  ``Budget.stale_ms``.
- *Send times.* The call that lets a request in also reserves its send time (``lua.SITE``:
  one every ``1/CRAWL_RATE``, or robots.txt's Crawl-delay, for the whole cluster, never more
  than ``CRAWL_RATE`` in a second, none inside a ``Retry-After`` pause, up to a second
  ahead). A reservation that a busy event loop let slip by more than half an interval is
  dropped, not used late, so late requests never bunch up.
- *One call for all.* Requests that come in the same turn of the event loop ask together;
  one call gives back the places left since the last, asks places for every request of this
  worker still waiting, and reserves send times for those let in and for those that hold a
  place without one; while some wait in the line, the worker asks again for all of them,
  ``POLL_MIN`` doubling up to ``POLL_MAX`` apart (their places in the line are kept).
- *A place given back* is not sent at once: it goes with this worker's next call, or alone
  ``LEAVE_DELAY`` seconds after it was left, whichever comes first. A place is so held up to
  ``LEAVE_DELAY`` longer than its request, never shorter: the cluster is never over its
  concurrency, only under it by that much.
- *Kept places (fairness).* Every call tells how many requests of the cluster wait in the
  line. While the last call, less than ``SITE_KEEP_SECONDS`` ago, said none did, a place given
  back goes straight to this worker's next request (within ``LEAVE_DELAY``) with no call:
  nobody was waiting for it. Past those seconds, or once a call says somebody waits, the
  worker asks, and its places go back through the line (its own requests wait there behind
  those that asked first). So a waiter of another worker waits at most ``SITE_KEEP_SECONDS``
  (plus ``LEAVE_DELAY`` and its own poll) longer than the line alone would make it: every
  worker that holds places hears of it within that time, and no worker can be starved. A
  place is passed on only while younger than ``SITE_KEEP_AGE`` (since Redis let it in), so
  its lapse in Redis never falls inside a request that took it over.
- *Redis unreachable.* A request goes ahead uncounted (its worker's own
  ``CONCURRENT_REQUESTS`` still bounds it), paced at the budget's interval by its worker
  alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler import defaults
from crawler.frontier.health import transient

if TYPE_CHECKING:
    from crawler.frontier.queue import Budget, RedisFrontier, SiteAnswer

POLL_MIN = 0.01
POLL_MAX = 0.2
"""Seconds between two asks while requests wait in the line: doubling from POLL_MIN up to
POLL_MAX, back to POLL_MIN once one got in (their places in the line are kept meanwhile)."""
LEAVE_DELAY = 0.05
"""Seconds a place given back waits for the worker's next call (or next request), at most."""
MAX_RESERVE = 8
"""Send times reserved in one call, at most."""


@dataclass(slots=True)
class Place:
    """A place at the site that Redis let in."""

    token: str
    since: float
    """When it was asked for (monotonic seconds): its lapse in Redis counts from after that."""
    left_at: float = math.inf
    """When its request gave it back (monotonic seconds)."""
    passed: bool = False
    """Passed on from an earlier request of this worker (kept, with no call)."""


@dataclass(eq=False, slots=True)
class _Ask:
    """One request waiting to go to the site."""

    place: Place | None = None
    token: str = ""
    """Its token in the line, while it waits for a place."""
    send_at: float | None = None
    """Its send time (monotonic seconds), once reserved."""
    alone: bool = False
    """Redis was unreachable: it goes uncounted, paced by this worker alone."""

    def ready(self) -> bool:
        return self.alone or (self.place is not None and self.send_at is not None)


class SiteSlots:
    """One worker's requests at the site, counted against the cluster's budget."""

    def __init__(
        self,
        queue: RedisFrontier,
        budget: Budget,
        sender: str,
        *,
        keep: float = defaults.SITE_KEEP_SECONDS,
        keep_age: float = defaults.SITE_KEEP_AGE,
    ) -> None:
        self.queue = queue
        self.budget = budget
        self.sender = sender
        self.keep = keep
        self.keep_age = keep_age
        self._tokens = (f"{sender}:{uuid.uuid4().hex[:8]}:{n}" for n in itertools.count())
        self.waits = 0
        """Asks that found no free place (a waiting request asks again)."""
        self.kept = 0
        """Places passed on to the next request with no call."""
        self._asks: list[_Ask] = []  # waiting, in the order they came
        self._left: list[Place] = []  # given back, not sent yet
        self._times: deque[float] = deque()  # reserved send times not handed out (monotonic)
        self._quiet_at = -math.inf  # when a call last said nobody waits in the line
        self._retry_at = 0.0  # when send times may be reserved again (monotonic)
        self._pause = POLL_MIN
        self._alone_at = 0.0  # the last send time paced alone (Redis unreachable)
        self._next: asyncio.Future[None] | None = None  # the next call, not started yet
        self._next_at = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._calls: set[asyncio.Task[None]] = set()

    async def enter(self) -> Place | None:
        """Wait for a place at the site and this request's send time; return at the send time
        with the place (None: Redis unreachable, not counted)."""
        ask = _Ask(place=self._reuse(time.monotonic()))
        self._asks.append(ask)
        try:
            delay = 0.0
            while True:
                self._hand_out_times()
                if ask.ready():
                    break
                await self._call_after(delay)
                delay = self._pause if ask.place is None else self._retry_at - time.monotonic()
            self._asks.remove(ask)
            if ask.send_at is not None and ask.send_at > time.monotonic():
                await asyncio.sleep(ask.send_at - time.monotonic())
        except BaseException:
            with contextlib.suppress(ValueError):
                self._asks.remove(ask)
            self._give_up(ask)
            raise
        return ask.place

    async def leave(self, place: Place | None) -> None:
        """The request that held ``place`` is done at the site: the place goes to this
        worker's next request, or back with the next call, or alone within ``LEAVE_DELAY``
        (a place Redis never hears of lapses)."""
        if place is None:
            return
        place.left_at = time.monotonic()
        self._left.append(place)
        self._schedule(LEAVE_DELAY)

    # --- kept places and send times --------------------------------------------------------
    def _keepable(self, place: Place, now: float) -> bool:
        return (
            now - self._quiet_at < self.keep
            and now - place.since < self.keep_age
            and now - place.left_at < LEAVE_DELAY
        )

    def _reuse(self, now: float) -> Place | None:
        """A place just given back that this request may take over, with no call."""
        for i in range(len(self._left) - 1, -1, -1):
            if self._keepable(self._left[i], now):
                place = self._left.pop(i)
                place.left_at, place.passed = math.inf, True
                self.kept += 1
                return place
        return None

    def _hand_out_times(self) -> None:
        """Reserved send times to the requests that hold a place, in the order they came."""
        stale = max(self.budget.interval_ms / 2000, 0.005)
        now = time.monotonic()
        while self._times and self._times[0] < now - stale:
            self._times.popleft()
        for ask in self._asks:
            if not self._times:
                return
            if ask.place is not None and ask.send_at is None:
                ask.send_at = self._times.popleft()

    def _give_up(self, ask: _Ask) -> None:
        """A request that stopped waiting (cancelled, or the call failed for good): its place,
        or its token in the line, goes back with the next call."""
        if ask.place is not None:
            self._left.append(Place(ask.place.token, -math.inf, -math.inf))
        elif ask.token:
            self._left.append(Place(ask.token, -math.inf, -math.inf))
        else:
            return
        with contextlib.suppress(RuntimeError):
            self._schedule(0.0)

    # --- the calls -------------------------------------------------------------------------
    async def _call_after(self, delay: float) -> None:
        """Wait for a call that starts within ``delay`` seconds (one shared by every request
        that wants one then), and for its answer."""
        future = self._schedule(max(0.0, delay))
        await asyncio.shield(future)

    def _schedule(self, delay: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._next is None:
            self._next = loop.create_future()
        if at < self._next_at:
            self._next_at = at
            if self._timer is not None:
                self._timer.cancel()
            # call_at, even for no delay: requests that come in this turn of the loop join it
            self._timer = loop.call_at(at, self._start)
        return self._next

    def _start(self) -> None:
        self._timer = None
        if self._running:
            return  # started again when the running call ends
        future, self._next, self._next_at = self._next, None, math.inf
        if future is None:
            return
        self._running = True
        task = asyncio.get_running_loop().create_task(self._call(future))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, future: asyncio.Future[None]) -> None:
        now = time.monotonic()
        for ask in self._asks:  # places given back since these requests came
            if ask.place is None and not ask.alone and not ask.token:
                ask.place = self._reuse(now)
        left = [p for p in self._left if not self._keepable(p, now)]
        self._left = [p for p in self._left if self._keepable(p, now)]
        asking = [a for a in self._asks if a.place is None and not a.alone]
        for ask in asking:
            ask.token = ask.token or next(self._tokens)
        timeless = sum(1 for a in self._asks if a.place is not None and a.send_at is None)
        try:
            if not (left or asking or timeless):
                future.set_result(None)  # the place given back was passed on meanwhile
                return
            answer = await self.queue.site(
                self.budget, self.sender, ask=[a.token for a in asking],
                left=[p.token for p in left], more_times=timeless, max_times=MAX_RESERVE,
            )  # fmt: skip
        except Exception as exc:
            if not future.done():
                if transient(exc):
                    self._alone([*asking, *(a for a in self._asks if a.send_at is None)])
                    future.set_result(None)
                else:
                    future.set_exception(exc)
                    future.exception()  # retrieved by the waiters; not logged as lost
        else:
            self._apply(answer, asking, now)
            future.set_result(None)
        finally:
            if not future.done():  # this task was cancelled (the loop closing): so are they
                future.cancel()
            self._running = False
            if self._next is not None and self._timer is None:
                self._start()
            if self._left:
                first = min(p.left_at for p in self._left)
                self._schedule(max(0.0, first + LEAVE_DELAY - time.monotonic()))

    def _apply(self, answer: SiteAnswer, asking: list[_Ask], sent: float) -> None:
        """Places and send times from one call's answer (its times on Redis's clock)."""
        base = time.monotonic()
        self._quiet_at = sent if answer.line == 0 else -math.inf
        got_in = False
        for ask, place in zip(asking, answer.places, strict=True):
            if place >= 0:
                self.waits += 1
                continue
            got_in = True
            ask.place = Place(ask.token, sent)
            ask.token = ""
            if ask not in self._asks:  # gave up meanwhile: it goes back
                self._give_up(ask)
        self._pause = POLL_MIN if got_in else min(POLL_MAX, self._pause * 2)
        self._times.extend(base + (t - answer.now_ms) / 1000 for t in answer.times_ms)
        if not answer.times_ms and answer.retry_at_ms:
            self._retry_at = base + max(0, answer.retry_at_ms - answer.now_ms) / 1000

    def _alone(self, asks: list[_Ask]) -> None:
        """Redis unreachable: these requests go uncounted, each a budget's interval after the
        last this worker sent alone."""
        self._quiet_at = -math.inf
        interval = self.budget.interval_ms / 1000
        for ask in dict.fromkeys(asks):
            self._alone_at = max(time.monotonic(), self._alone_at + interval)
            # A place it was let in before lapses in Redis (as does one given back in the call).
            ask.alone, ask.send_at, ask.place = True, self._alone_at, None
