"""The one retry-with-backoff helper: Redis and MongoDB outages, scheduling steps, closing.

``retry(call, ...)`` awaits ``call()`` until it succeeds. A failure that ``retry_on`` accepts is
retried after a capped exponential backoff (``initial``, doubled each time up to ``maximum``,
with ±25 % jitter when ``jitter``); any other error propagates at once. ``deadline`` (a
``time.monotonic()`` instant, asked again after every failure so that a caller may shorten it,
as a closing store does) ends the retrying: when the next wait would pass it, the last error is
chained to ``RetryDeadlineExceeded``. Without a deadline it retries for as long as the caller's
task lives (cancel the task to stop it). ``on_retry(exc)`` is told of every failure that will be
retried (counters, health flags). ``sleep(seconds)`` replaces ``asyncio.sleep`` for the waits
(a caller that must stop at once lets it return early and raise).

Built on tenacity (a well-kept library) instead of the five hand-written loops the crawler had:
the policy (what to retry, how long) stays with each caller, the mechanism is here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from crawler import defaults

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RetryDeadlineExceeded(RuntimeError):
    """The call kept failing until its retry deadline passed (the cause is the last error)."""


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """The wait before retry number ``attempt`` (1, 2, ...): ``initial * 2**(attempt-1)``,
    capped at ``maximum``."""
    return float(min(maximum, initial * 2 ** max(0, attempt - 1)))


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_on: Callable[[BaseException], bool],
    deadline: Callable[[], float] | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
    initial: float = defaults.BACKOFF_INITIAL,
    maximum: float = defaults.BACKOFF_MAX,
    jitter: bool = True,
    log: bool = True,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``call()`` until it succeeds, retrying what ``retry_on`` accepts (module doc)."""

    def wait(state: RetryCallState) -> float:
        delay = backoff(state.attempt_number, initial, maximum)
        return delay * (0.75 + random.random() / 2) if jitter else delay

    def stop(state: RetryCallState) -> bool:
        end = deadline() if deadline is not None else math.inf
        return time.monotonic() + state.upcoming_sleep > end

    def before_sleep(state: RetryCallState) -> None:
        exc = _error(state)
        if on_retry is not None:
            on_retry(exc)
        if log:
            attempt = state.attempt_number
            emit = logger.warning if attempt == 1 or attempt % 10 == 0 else logger.info
            emit(
                "%s failed (attempt %d, retrying in %.1fs): %s",
                what,
                attempt,
                state.upcoming_sleep,
                str(exc)[:300],
            )

    def give_up(state: RetryCallState) -> T:
        exc = _error(state)
        raise RetryDeadlineExceeded(
            f"{what}: still failing after {state.attempt_number} attempts: {exc}"
        ) from exc

    async def attempt() -> T:
        return await call()  # a coroutine function, so tenacity awaits what ``call`` returns

    retrying = AsyncRetrying(
        retry=retry_if_exception(retry_on),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
        sleep=sleep,
    )
    result: T = await retrying(attempt)
    return result


def _error(state: RetryCallState) -> BaseException:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    return exc if exc is not None else RuntimeError("no outcome")
