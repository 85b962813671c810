"""Fault switches: 503 and 429 on a path's first request, slow paths, all deterministic."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.replica.conftest import Replica


def article_paths(rep: Replica) -> list[str]:
    return [a["path"] for a in rep.truth()["articles"]][-80:]


def first_statuses(rep: Replica, paths: list[str]) -> dict[str, int]:
    return {p: rep.get(p).status for p in paths}


def test_503_first_request_only(start_replica: Callable[..., Replica]) -> None:
    rep = start_replica("--articles", "120", "--fault-503", "0.5")
    paths = article_paths(rep)
    first = first_statuses(rep, paths)
    failed = [p for p, s in first.items() if s == 503]
    assert set(first.values()) == {200, 503}
    assert 0.25 * len(paths) <= len(failed) <= 0.75 * len(paths)
    assert all(rep.get(p).status == 200 for p in paths)
    twin = start_replica("--articles", "120", "--fault-503", "0.5")
    assert first_statuses(twin, paths) == first
    stats = rep.get("/__replica__/stats").json()
    assert stats["by_kind"]["fault_503"] == len(failed)
    assert rep.get("/robots.txt").status == 200


def test_429_with_retry_after(start_replica: Callable[..., Replica]) -> None:
    rep = start_replica("--articles", "120", "--fault-429", "0.3", "--seed", "5")
    paths = article_paths(rep)
    limited = []
    for p in paths:
        r = rep.get(p)
        if r.status == 429:
            assert r.headers["retry-after"] == "1"
            limited.append(p)
        else:
            assert r.status == 200
    assert 0.1 * len(paths) <= len(limited) <= 0.5 * len(paths)
    assert all(rep.get(p).status == 200 for p in limited)


def test_503_then_429_then_ok(start_replica: Callable[..., Replica]) -> None:
    rep = start_replica("--articles", "60", "--fault-503", "1", "--fault-429", "1")
    path = article_paths(rep)[0]
    assert [rep.get(path).status for _ in range(3)] == [503, 429, 200]


def test_slow_paths(start_replica: Callable[..., Replica]) -> None:
    """A behaviour check (the delay is applied), not a speed measurement."""
    rep = start_replica("--articles", "60", "--fault-slow", "1", "--slow-ms", "300")
    path = article_paths(rep)[0]
    for _ in range(2):
        started = time.monotonic()
        assert rep.get(path).status == 200
        assert time.monotonic() - started >= 0.29
    fast = start_replica("--articles", "60", "--fault-slow", "0.5", "--slow-ms", "0")
    assert all(fast.get(p).status == 200 for p in article_paths(fast)[:10])


def test_challenged_paths_answer_a_challenge_page_every_time(
    start_replica: Callable[..., Replica],
) -> None:
    rep = start_replica("--articles", "120", "--fault-challenge", "0.3", "--seed", "5")
    paths = article_paths(rep)
    challenged = [p for p in paths if b"Checking your browser" in rep.get(p).body]
    assert 0.1 * len(paths) <= len(challenged) <= 0.5 * len(paths)
    again = rep.get(challenged[0])
    assert again.status == 200 and b"Checking your browser" in again.body
    assert b"<a " not in again.body, "no link to follow"
    stats = rep.get("/__replica__/stats").json()
    assert stats["challenged"][challenged[0]] == 2
    assert stats["by_kind"]["fault_challenge"] == len(challenged) + 1
    every = start_replica("--articles", "60", "--fault-challenge", "1")
    for path in ["/", "/politics", "/rss/v2.xml", *article_paths(every)[:3]]:
        assert b"Checking your browser" in every.get(path).body, path
    assert b"Checking your browser" not in every.get("/robots.txt").body
