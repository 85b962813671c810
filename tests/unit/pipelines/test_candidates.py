"""The band-indexed recent window and the batched candidate look-up."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from crawler.mongo import Document
from pipelines.candidates import CandidateLookup, RecentWindow

from .helpers import run


@dataclass(frozen=True)
class Entry:
    id: int
    bands: frozenset[int]


def _check(window: RecentWindow[Entry], expected: dict[int, Entry]) -> None:
    """The window holds ``expected`` and its index is exactly what they imply."""
    assert {e.id: e for e in window.values()} == expected
    wanted: dict[int, set[int]] = {}
    for entry in expected.values():
        for key in entry.bands:
            wanted.setdefault(key, set()).add(entry.id)
    assert window.index() == {key: frozenset(ids) for key, ids in wanted.items()}
    for key in {k for e in expected.values() for k in e.bands} | {-1}:
        assert {e.id for e in window.sharing([key])} == set(wanted.get(key, ()))


def test_window_evicts_the_oldest_and_unindexes_it() -> None:
    window: RecentWindow[Entry] = RecentWindow(2)
    a, b, c = Entry(1, frozenset({10, 11})), Entry(2, frozenset({11, 12})), Entry(3, frozenset())
    window.remember(a)
    window.remember(b)
    _check(window, {1: a, 2: b})
    assert {e.id for e in window.sharing([11])} == {1, 2}
    window.remember(c)  # evicts a: key 10 is gone, 11 keeps only b
    _check(window, {2: b, 3: c})
    assert window.get(1) is None and 1 not in window and len(window) == 2


def test_window_replaces_an_id_seen_again_with_its_new_bands() -> None:
    window: RecentWindow[Entry] = RecentWindow(3)
    old, other = Entry(1, frozenset({10, 11})), Entry(2, frozenset({20}))
    window.remember(old)
    window.remember(other)
    new = Entry(1, frozenset({11, 30}))
    window.remember(new)  # an edited body: band 10 no longer leads to it
    _check(window, {1: new, 2: other})
    assert window.get(1) is new
    window.remember(Entry(3, frozenset()))
    window.remember(Entry(4, frozenset({20})))  # evicts 2, the oldest since 1 came again
    assert [e.id for e in window.values()] == [1, 3, 4]


def test_window_index_stays_consistent_through_random_traffic() -> None:
    rng = random.Random(5)
    window: RecentWindow[Entry] = RecentWindow(16)
    expected: dict[int, Entry] = {}
    for step in range(3000):
        aid = rng.randrange(60)  # ids come back, often with other bands
        entry = Entry(aid, frozenset(rng.sample(range(40), rng.randrange(0, 5))))
        window.remember(entry)
        expected.pop(aid, None)
        expected[aid] = entry
        while len(expected) > 16:
            del expected[next(iter(expected))]
        if step % 50 == 0 or step > 2950:
            _check(window, expected)
    assert [e.id for e in window.values()] == list(expected)


def test_window_needs_a_size() -> None:
    with pytest.raises(ValueError, match="size"):
        RecentWindow[Entry](0)


def _docs(*specs: tuple[int, list[int]]) -> list[Document]:
    return [{"_id": aid, "minhash_bands": keys} for aid, keys in specs]


def test_lookup_batches_and_hands_each_waiter_its_own_documents() -> None:
    stored = _docs((1, [10, 11]), (2, [20]), (3, [11, 30]), (4, [99]))
    calls: list[tuple[list[int], int, list[int]]] = []

    async def fetch(keys: list[int], limit: int, skip: list[int]) -> list[Document]:
        calls.append((keys, limit, skip))
        wanted = set(keys)
        return [d for d in stored if wanted & set(d["minhash_bands"]) and d["_id"] not in skip]

    async def body() -> list[list[Document]]:
        lookup = CandidateLookup(fetch, batch_size=3, interval=3600.0, limit=5)
        got = await asyncio.gather(
            lookup.candidates(frozenset({11})),
            lookup.candidates(frozenset({20, 21})),
            lookup.candidates(frozenset({40})),
        )
        assert lookup.batches == 1
        await lookup.close()
        return list(got)

    got = run(body)
    assert calls == [([11, 20, 21, 40], 15, [])]  # one query over every key, 3 x the limit
    assert [sorted(d["_id"] for d in docs) for docs in got] == [[1, 3], [2], []]


def test_an_own_document_is_left_out_only_when_no_other_waiter_shares_its_keys() -> None:
    # 1 and 2 are stored with their waiters' keys; 2's keys meet 3's, 1's meet nobody's.
    stored = _docs((1, [10, 11]), (2, [20, 21]), (3, [21, 30]), (4, [11]))
    calls: list[list[int]] = []

    async def fetch(keys: list[int], limit: int, skip: list[int]) -> list[Document]:
        calls.append(skip)
        wanted = set(keys)
        return [d for d in stored if wanted & set(d["minhash_bands"]) and d["_id"] not in skip]

    async def body() -> list[list[Document]]:
        lookup = CandidateLookup(fetch, batch_size=4, interval=3600.0, limit=5)
        got = await asyncio.gather(
            lookup.candidates(frozenset({10, 11}), own=1),
            lookup.candidates(frozenset({20, 21}), own=2),
            lookup.candidates(frozenset({21, 30}), own=3),
            lookup.candidates(frozenset({40}), own=None),
        )
        await lookup.close()
        return list(got)

    got = run(body)
    assert calls == [[1]]  # 2 and 3 share key 21: each is given the other
    assert [sorted(d["_id"] for d in docs) for docs in got] == [[4], [2, 3], [2, 3], []]


def test_lookup_keeps_at_most_limit_per_waiter_and_close_sends_what_waits() -> None:
    stored = _docs(*((i, [7]) for i in range(10)))

    async def fetch(keys: list[int], limit: int, skip: list[int]) -> list[Document]:
        return stored[:limit]

    async def body() -> list[list[Document]]:
        lookup = CandidateLookup(fetch, batch_size=100, interval=3600.0, limit=4)
        tasks = [asyncio.create_task(lookup.candidates(frozenset({7}))) for _ in range(2)]
        empty = await lookup.candidates(frozenset())  # no bands: no query, no wait
        assert empty == [] and lookup.batches == 0
        while lookup.waiting < 2:
            await asyncio.sleep(0)
        await lookup.close()  # the batch is neither full nor due: close sends it
        return list(await asyncio.gather(*tasks))

    got = run(body)
    assert [len(docs) for docs in got] == [4, 4]


def test_lookup_raises_the_batch_error_to_every_waiter() -> None:
    async def fetch(keys: list[int], limit: int, skip: list[int]) -> list[Document]:
        raise RuntimeError("server gone")

    async def body() -> list[object]:
        lookup = CandidateLookup(fetch, batch_size=2, interval=3600.0, limit=5)
        results = await asyncio.gather(
            lookup.candidates(frozenset({1})),
            lookup.candidates(frozenset({2})),
            return_exceptions=True,
        )
        await lookup.close()
        return list(results)

    results = run(body)
    assert [str(r) for r in results] == ["server gone", "server gone"]
