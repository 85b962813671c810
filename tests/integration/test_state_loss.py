"""Redis loses its state mid-run (FLUSHALL, a restart without persistence): noticed, reported.

Two real workers crawl the replica; midway every key of the crawl's prefix is deleted (what
FLUSHALL does to it, without flushing a server other tests share). Both workers must notice
(the epoch is gone), log it loudly, record the run as ``failed`` with the reason, and exit
``EXIT_FAILED``; nothing of the lost run is written back into Redis. The next crawl starts from
a clean state: it walks every hub again, stores the rest, and ends ``ok``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from crawler.frontier.keys import FrontierKeys
from crawler.outcome import EXIT_FAILED
from replica.launch import ReplicaProcess
from tests.chaos.test_chaos import wait_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=600, seed=8, extra_args=["--no-hostile"]) as process:
        yield process


def test_a_lost_redis_state_fails_the_run_and_the_next_run_starts_clean(
    crawl_env_factory, replica
) -> None:
    env = crawl_env_factory(replica)
    settings = {"CRAWL_RATE": "40"}
    workers = [env.start_worker(f"w{i}", "-a", "since=all", **settings) for i in range(2)]
    db = env.db()
    for _ in range(600):
        if db.articles.count_documents({}) >= 30:
            break
        assert all(w.poll() is None for w in workers), env.log_text()[-3000:]
        time.sleep(0.1)
    client = redis.Redis.from_url(env.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{env.prefix}:*", count=1000))
        client.delete(*keys)  # the crawl's whole state, gone
        assert wait_all(workers, timeout=120) == [EXIT_FAILED, EXIT_FAILED], env.log_text()[-4000:]
        log = env.log_text()
        assert log.count("REDIS STATE LOST") == 2, "each worker says so"
        [lost] = list(db.runs.find())
        assert lost["outcome"] == "failed"
        assert lost["reasons"][0].startswith("redis_state_lost: Redis's epoch was"), lost
        k = FrontierKeys(env.prefix)
        for key in (k.pending, k.leased, k.delayed, k.seen_hubs, k.seen_articles, k.run):
            assert not client.exists(key), f"{key} was written back after the loss"
        # The next run starts from a clean state and completes the crawl.
        replica.get_json("/__replica__/stats/reset", method="POST")
        assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
        stats = replica.stats()
        assert stats["by_kind"]["section"] >= 9, "every section hub walked again"
        runs = {r["_id"]: r for r in db.runs.find()}
        assert len(runs) == 2
        [again] = [r for r in runs.values() if r["_id"] != lost["_id"]]
        assert again["outcome"] == "ok", again
        assert env.missing_articles() == [], "articles missing after the next run"
    finally:
        client.close()
