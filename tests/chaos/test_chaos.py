"""The frontier under fire: killed workers, restarted servers, a strict request budget.

Real worker processes crawl the replica with real Redis and MongoDB servers. Whatever happens
to them, the end state must be the one a calm crawl reaches: every reachable article stored
exactly once, every hostile URL that must fail in ``failures``, nothing missing from both.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.embedded import ServerProcess, start_mongo, start_redis
from replica.launch import ReplicaProcess
from tests.crawls import CrawlEnv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=3000, seed=5) as process:
        yield process


def expected(truth: dict[str, Any]) -> tuple[set[int], set[str]]:
    """Article ids that must be stored, and URLs that must be recorded as failures."""
    hostile = {h["url"]: h for h in truth["hostile"]}
    articles = {
        a["id"]
        for a in truth["articles"]
        if a["reachable"] and hostile.get(a["url"], {}).get("expect", "article") == "article"
    }
    failures = {url for url, h in hostile.items() if h["expect"] == "failure"}
    return articles, failures


def assert_complete(env: CrawlEnv, truth: dict[str, Any]) -> None:
    articles, must_fail = expected(truth)
    db = env.db()
    stored = [doc["_id"] for doc in db.articles.find({}, {"_id": 1})]
    assert len(stored) == len(set(stored))
    assert sorted(articles - set(stored)) == [], "articles lost"
    assert sorted(set(stored) - articles) == [], "stored what is not an article"
    failed = {doc["url"] for doc in db.failures.find({}, {"url": 1})}
    assert sorted(must_fail - failed) == [], "hostile URLs not recorded"
    hostile = {h["url"] for h in truth["hostile"]}
    assert sorted(failed - hostile) == [], "failures that are not hostile URLs"
    runs = list(db.runs.find())
    assert len(runs) == 1, "one run, ended once, reported once"


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            codes.append(-999)
    return codes


def test_workers_killed_at_random_lose_nothing(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    truth = replica.truth()
    settings = {"CRAWL_RATE": "120", "TASS_LEASE_SECONDS": "3", "TASS_RETRY_BACKOFF": "0.2"}
    rng = random.Random(20261125)
    workers = [env.start_worker(f"w{i}", "-a", "since=all", **settings) for i in range(3)]
    finished: list[subprocess.Popen[bytes]] = []
    kills = 0
    while kills < 6:
        time.sleep(rng.uniform(2.0, 4.0))
        running = [w for w in workers if w.poll() is None]
        if len(running) < 3:
            break  # the run ended before all kills were done
        victim = rng.choice(running)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        workers.remove(victim)
        workers.append(env.start_worker(f"w-restart{kills}", "-a", "since=all", **settings))
    assert kills >= 5, "the crawl ended before five workers were killed"
    finished.extend(workers)
    assert wait_all(finished, timeout=400) == [0] * len(finished), env.log_text()[-4000:]
    assert_complete(env, truth)
    run = env.db().runs.find_one()
    assert run["counters"].get("frontier/leases_reaped", 0) > 0, "no killed lease was reaped"


def restart(server: ServerProcess, start: Any, pause: float) -> ServerProcess:
    server.stop()
    time.sleep(pause)
    return start(Path(server.data_dir), port=server.port)


@pytest.fixture(scope="module")
def middle_replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=1200, seed=6) as process:
        yield process


@pytest.mark.parametrize("which", ["redis", "mongo"])
def test_a_server_restarted_mid_crawl_loses_nothing(
    crawl_env_factory, middle_replica, tmp_path, which
) -> None:
    replica = middle_replica
    starter = start_redis if which == "redis" else start_mongo
    server = starter(tmp_path / which)
    env = None
    try:
        if which == "redis":
            env = crawl_env_factory(replica, redis_url=server.url)
        else:
            env = crawl_env_factory(replica, mongo_uri=server.url)
        truth = replica.truth()
        # A short MongoDB timeout, so the outage is met by the store's retries, not waited out.
        settings = {"CRAWL_RATE": "150", "TASS_RETRY_BACKOFF": "0.2", "TASS_MONGO_TIMEOUT": "1"}
        workers = [env.start_worker(f"w{i}", "-a", "since=all", **settings) for i in range(2)]
        time.sleep(5)
        assert all(w.poll() is None for w in workers), "the crawl ended before the restart"
        server = restart(server, starter, pause=3)
        assert wait_all(workers, timeout=400) == [0, 0], env.log_text()[-4000:]
        assert_complete(env, truth)
        log = env.log_text()
        held = "Redis unreachable" if which == "redis" else "failed (attempt"
        assert held in log, "the outage was not met"
    finally:
        if env is not None:
            env.close_clients()
        server.stop()


@pytest.fixture(scope="module")
def small_replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=400, seed=3, extra_args=["--no-hostile"]) as process:
        yield process


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_request_budget_holds_for_the_whole_cluster(
    crawl_env_factory, small_replica, workers
) -> None:
    env = crawl_env_factory(small_replica)
    small_replica.get_json("/__replica__/stats/reset", method="POST")
    codes = env.run_workers(
        workers,
        *("-a", "since=all", "-a", "sections=politics", "-a", "max_articles=30"),
        timeout=300,
        CRAWL_RATE="10",
    )
    assert codes == [0] * workers, env.log_text()[-3000:]
    stats = small_replica.stats()
    assert stats["total"] > 30
    assert stats["max_rate_1s"] <= 10, stats


def test_a_429_storm_pauses_every_worker_and_loses_nothing(crawl_env_factory) -> None:
    # A third of the paths answer 429 (Retry-After: 1 s) to their first request.
    with ReplicaProcess(
        articles=300, seed=9, extra_args=["--no-hostile", "--fault-429", "0.3"]
    ) as storm:
        env = crawl_env_factory(storm)
        truth = storm.truth()
        codes = env.run_workers(
            2, "-a", "since=all", "-a", "sections=politics", timeout=300, CRAWL_RATE="200"
        )
        assert codes == [0, 0], env.log_text()[-3000:]
        politics = [
            a for a in truth["articles"] if a["section"] == "politics" and 4954 in a["feeds"]
        ]
        stored = {doc["_id"] for doc in env.db().articles.find({}, {"_id": 1})}
        assert {a["id"] for a in politics} <= stored, "articles lost to the storm"
        assert env.db().failures.count_documents({}) == 0
        run = env.db().runs.find_one()
        assert run["counters"].get("frontier/pauses", 0) > 0
        assert "pausing every worker" in env.log_text()
