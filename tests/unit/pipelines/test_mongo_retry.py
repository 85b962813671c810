"""``mongo.retry`` and the ``ShutdownClock``: a stopping crawler's MongoDB waits are cut short,
also while an attempt is under way (an attempt can outlast its timeouts: a name lookup of a
stopped container's host does)."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from pymongo.errors import AutoReconnect

from crawler import mongo

from .helpers import make_crawler, run


def test_an_attempt_under_way_is_abandoned_once_the_deadline_is_moved_up() -> None:
    release = threading.Event()
    started = threading.Event()
    end = [math.inf]

    def blocked() -> str:
        started.set()
        release.wait(60)
        return "late"

    async def body():
        task = asyncio.create_task(
            mongo.retry(blocked, what="blocked call", deadline=lambda: end[0])
        )
        await asyncio.to_thread(started.wait, 10)
        end[0] = time.monotonic()  # the crawler is being stopped: no more waiting
        with pytest.raises(mongo.RetryDeadlineExceeded, match="did not answer"):
            await task
        assert not release.is_set()  # given up while the call was still blocked
        release.set()
        await asyncio.sleep(0.05)

    run(body)


def test_transient_errors_are_retried_until_the_call_succeeds() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("server away")
        return "written"

    async def body():
        return await mongo.retry(flaky, what="flaky", deadline=lambda: math.inf)

    assert run(body) == "written" and len(calls) == 3


def test_the_shutdown_clock_starts_when_a_crawl_stops_and_is_shared() -> None:
    crawler = make_crawler(TASS_STORE_CLOSE_DEADLINE=7.0)
    outside = mongo.ShutdownClock.of(crawler)
    assert outside.deadline() == math.inf  # built outside a crawl: never stops
    crawler = make_crawler(TASS_STORE_CLOSE_DEADLINE=7.0)
    crawler.crawling = True  # as when the stages are built by a starting crawl
    clock = mongo.ShutdownClock.of(crawler)
    assert mongo.ShutdownClock.of(crawler) is clock  # one per crawler, for every stage
    assert clock.deadline() == math.inf
    crawler.crawling = False  # Crawler.stop_async (SIGTERM)
    before = time.monotonic()
    deadline = clock.deadline()
    assert before + 7.0 <= deadline <= time.monotonic() + 7.0
    assert clock.deadline() == deadline  # fixed from the first look on


def test_attempts_held_up_by_an_outage_leave_the_default_executor_free() -> None:
    """Name lookups for Redis and the store's spill run in the loop's default executor: many
    MongoDB attempts stuck in an outage must not starve them."""
    release = threading.Event()

    def stuck() -> None:
        release.wait(60)

    async def body():
        stuck_calls = [
            asyncio.create_task(mongo.retry(stuck, what="stuck", deadline=lambda: math.inf))
            for _ in range(40)  # more than the default executor has threads
        ]
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        assert await loop.getaddrinfo("localhost", 6379)  # done while all 40 are stuck
        assert await asyncio.to_thread(lambda: "spilled") == "spilled"
        assert not any(t.done() for t in stuck_calls)
        release.set()
        await asyncio.gather(*stuck_calls)

    run(body)


def test_calls_reuse_idle_threads_and_never_wait_for_a_busy_one() -> None:
    """A finished call's thread takes the next call (starting a thread per call cost as much as
    a small query); a call whose thread is stuck never holds up another call."""
    release = threading.Event()

    def stuck() -> threading.Thread:
        release.wait(60)
        return threading.current_thread()

    async def body():
        first = await mongo.retry(threading.current_thread, what="one", deadline=lambda: math.inf)
        second = await mongo.retry(threading.current_thread, what="two", deadline=lambda: math.inf)
        # One idle thread, taken again (a thread object: an ident may be recycled).
        assert first is second and first is not threading.current_thread()
        held = asyncio.create_task(mongo.retry(stuck, what="stuck", deadline=lambda: math.inf))
        await asyncio.sleep(0.05)
        other = await asyncio.wait_for(
            mongo.retry(threading.current_thread, what="beside", deadline=lambda: math.inf), 5
        )
        assert not held.done()
        release.set()
        assert await held is not other  # each ran in a thread of its own

    run(body)
