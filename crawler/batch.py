"""The one future-based batcher: the frontier's queue writes, dedupe's look-ups, the store.

``Batcher(run, size=..., interval=...)`` gathers items; ``submit(item)`` returns a future that
the item's batch resolves. A batch goes when ``size`` items wait, ``interval`` seconds after the
oldest waiting item arrived, on ``flush()``, and at ``close()``; items keep their arrival order,
and batches start in that order. ``concurrency`` caps the batches in flight (1: one at a time,
so a later batch never overtakes an earlier one, as the store and the frontier need; None: no
cap, as the candidate look-ups allow).

``idle`` (optional) says when nothing more can join: the batcher then sends what waits at
once instead of waiting out ``interval`` (checked every ``IDLE_POLL`` seconds while items wait).
So ``interval`` bounds the wait of a batch that fills slowly, and a batch whose items are all
that is in flight goes as soon as that is so (``pipelines.common.nothing_else_coming``).

``run(batch)`` returns one result per item, in order; a result that is an exception fails that
item's future alone. An exception raised by ``run`` fails every future of its batch (a bug or a
deadline: nobody waits forever). A future nobody awaits is fine (the frontier's writes): its
outcome is marked retrieved so that asyncio does not complain about it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Run = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]

IDLE_POLL = 0.02
"""Seconds between two asks of ``idle`` while items wait (a local check, no I/O)."""


@dataclass(slots=True, eq=False)
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """Gathers items into batches for ``run`` (module docstring)."""

    def __init__(
        self,
        run: Run[T, R],
        *,
        size: int | None,
        interval: float,
        concurrency: int | None = 1,
        name: str = "batch",
        idle: Callable[[], bool] | None = None,
    ) -> None:
        if size is not None and size <= 0:
            raise ValueError(f"{name}: the batch size must be > 0, got {size}")
        if not interval >= 0:
            raise ValueError(f"{name}: the batch interval must be >= 0 seconds, got {interval}")
        if concurrency is not None and concurrency <= 0:
            raise ValueError(f"{name}: concurrency must be > 0, got {concurrency}")
        self._run = run
        self.size = size
        self.interval = interval
        self.concurrency = concurrency
        self.name = name
        self._waiting: list[_Waiting[T, R]] = []
        self._due = 0  # waiting items at the head whose batch is due now
        self._timer: asyncio.TimerHandle | None = None
        self._idle = idle
        self._poll: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # items of the batches running
        self.batches = 0  # batches started

    def __len__(self) -> int:
        """Items not done yet: waiting, or in a batch that runs."""
        return len(self._waiting) + self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, item: T) -> asyncio.Future[R]:
        """Add ``item``; the future resolves with its result once its batch has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append(_Waiting(item, future))
        if self._timer is None and self.size != 1:
            self._timer = loop.call_later(self.interval, self._on_timer)
        self._pump()
        if self._idle is not None and self._poll is None and self._waiting:
            self._poll = loop.call_later(IDLE_POLL, self._on_poll)
        return future

    def flush(self) -> None:
        """Send every waiting item now (in batches of ``size``)."""
        self._due = len(self._waiting)
        self._pump()

    async def close(self) -> None:
        """Send everything that waits and wait until every batch has run."""
        while self._waiting or self._running:
            self.flush()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
        self._cancel_timer()

    # --- internals -------------------------------------------------------------------------
    def _on_timer(self) -> None:
        self._timer = None
        self._due = len(self._waiting)
        self._pump()

    def _on_poll(self) -> None:
        self._poll = None
        if not self._waiting:
            return
        assert self._idle is not None
        if self._idle():
            self.flush()
        if self._waiting:
            self._poll = asyncio.get_running_loop().call_later(IDLE_POLL, self._on_poll)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def _ready(self) -> bool:
        if not self._waiting:
            return False
        if self.concurrency is not None and len(self._running) >= self.concurrency:
            return False
        full = self.size is not None and len(self._waiting) >= self.size
        return full or self._due > 0

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._ready():
            take = len(self._waiting) if self.size is None else self.size
            batch, self._waiting = self._waiting[:take], self._waiting[take:]
            self._due = max(0, self._due - len(batch))
            self.batches += 1
            self._in_flight += len(batch)
            task = loop.create_task(self._execute(batch), name=f"tass-{self.name}")
            self._running.add(task)
            task.add_done_callback(self._finished)
        if not self._waiting:
            self._cancel_timer()
        elif self._timer is None and self._due == 0:
            # What waits behind a batch gets its own interval from now.
            self._timer = loop.call_later(self.interval, self._on_timer)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not asyncio.get_event_loop().is_closed():
            self._pump()

    async def _execute(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            try:
                results = await self._run([w.item for w in batch])
            except asyncio.CancelledError:
                for waiting in batch:
                    waiting.future.cancel()
                raise
            except Exception as exc:
                for waiting in batch:
                    _settle(waiting.future, exc)
                return
            if len(results) != len(batch):
                error = RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
                for waiting in batch:
                    _settle(waiting.future, error)
                return
            for waiting, result in zip(batch, results, strict=True):
                _settle(waiting.future, result)
        finally:
            self._in_flight -= len(batch)


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
        # Nobody may await it (the frontier's writes): do not let asyncio log it as lost.
        future.add_done_callback(_retrieved)
    else:
        future.set_result(result)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
