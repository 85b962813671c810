"""The shared batcher: by size, by time, at close, in order, one batch at a time or several."""

from __future__ import annotations

import asyncio

import pytest

from crawler.batch import Batcher


def run(coro):
    return asyncio.run(coro)


def test_batches_by_size_in_arrival_order() -> None:
    seen: list[list[int]] = []

    async def double(batch: list[int]) -> list[int]:
        seen.append(batch)
        return [2 * x for x in batch]

    async def body():
        batcher: Batcher[int, int] = Batcher(double, size=3, interval=3600)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)))
        await batcher.close()
        return results, batcher.batches

    results, batches = run(body())
    assert results == [0, 2, 4, 6, 8, 10]
    assert seen == [[0, 1, 2], [3, 4, 5]] and batches == 2


def test_a_partial_batch_goes_after_the_interval_or_at_close() -> None:
    seen: list[list[str]] = []

    async def echo(batch: list[str]) -> list[str]:
        seen.append(batch)
        return batch

    async def body():
        timed: Batcher[str, str] = Batcher(echo, size=100, interval=0.05)
        assert await timed.submit("a") == "a"  # the timer sent a batch of one
        closing: Batcher[str, str] = Batcher(echo, size=100, interval=3600)
        waiting = closing.submit("b")
        await asyncio.sleep(0.01)
        assert not waiting.done() and len(closing) == 1
        await closing.close()
        assert waiting.result() == "b" and len(closing) == 0

    run(body())
    assert seen == [["a"], ["b"]]


def test_one_batch_at_a_time_never_overtakes() -> None:
    running = 0
    most = 0
    order: list[int] = []

    async def slow(batch: list[int]) -> list[None]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        order.extend(batch)
        running -= 1
        return [None] * len(batch)

    async def body(concurrency):
        batcher: Batcher[int, None] = Batcher(slow, size=2, interval=0, concurrency=concurrency)
        await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        await batcher.close()

    run(body(1))
    assert most == 1 and order == list(range(10))
    order.clear()
    most = 0
    run(body(None))
    assert most > 1 and sorted(order) == list(range(10))


def test_errors_fail_their_item_or_their_batch() -> None:
    async def picky(batch: list[int]) -> list[int | BaseException]:
        if 13 in batch:
            raise RuntimeError("unlucky batch")
        return [ValueError(f"odd {x}") if x % 2 else x for x in batch]

    async def body():
        batcher: Batcher[int, int] = Batcher(picky, size=2, interval=3600)
        results = await asyncio.gather(
            *(batcher.submit(i) for i in (2, 3, 13, 4)), return_exceptions=True
        )
        unawaited = batcher.submit(13)  # nobody awaits it: no "exception never retrieved"
        await batcher.close()
        assert unawaited.done()
        return results

    results = run(body())
    assert results[0] == 2 and isinstance(results[1], ValueError)
    assert [str(r) for r in results[2:]] == ["unlucky batch", "unlucky batch"]


def test_bad_arguments_name_the_batcher() -> None:
    async def nothing(batch: list[int]) -> list[None]:
        return [None] * len(batch)

    with pytest.raises(ValueError, match="store: the batch size"):
        Batcher(nothing, size=0, interval=1, name="store")
    with pytest.raises(ValueError, match="interval"):
        Batcher(nothing, size=1, interval=-1)


def test_a_partial_batch_goes_once_nothing_else_can_join() -> None:
    """``idle`` (nothing more in flight) sends what waits without waiting out the interval."""
    seen: list[list[int]] = []
    idle = {"now": False}

    async def echo(batch: list[int]) -> list[int]:
        seen.append(batch)
        return batch

    async def body():
        batcher: Batcher[int, int] = Batcher(
            echo, size=100, interval=3600, idle=lambda: idle["now"]
        )
        first = [batcher.submit(i) for i in range(3)]
        await asyncio.sleep(0.1)
        assert seen == []  # more may come: it waits
        idle["now"] = True
        assert await asyncio.wait_for(asyncio.gather(*first), 5) == [0, 1, 2]
        await batcher.close()

    run(body())
    assert seen == [[0, 1, 2]]
