"""Redis loses its state mid-run (FLUSHALL, a restart without persistence): noticed, reported.

Two real workers crawl the replica; midway every key of the crawl's prefix is deleted (what
FLUSHALL does to it, without flushing a server other tests share). Both workers must notice
(the epoch is gone), log it loudly, record the run as ``failed`` with the reason, and exit
``EXIT_FAILED``; nothing of the lost run is written back into Redis. The next crawl starts from
a clean state: it walks every hub again, stores the rest (the seen articles are rebuilt from
MongoDB: what was stored is not fetched again), and ends ``ok``. A retry that was waiting in
Redis is known to MongoDB and queued again by the next run.
"""

from __future__ import annotations

import json
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
        # The next run starts from a clean state and completes the crawl, without fetching
        # again what was stored: the seen articles are rebuilt from MongoDB.
        stored = {d["_id"] for d in db.articles.find({}, {"_id": 1})}
        replica.get_json("/__replica__/stats/reset", method="POST")
        assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
        assert f"rebuilt from the {len(stored)} stored in MongoDB" in env.log_text()
        stats = replica.stats()
        assert stats["by_kind"]["section"] >= 9, "every section hub walked again"
        reachable = {a["id"] for a in replica.truth()["articles"] if a["reachable"]}
        assert stats["by_kind"]["article"] == len(reachable - stored), stats["by_kind"]
        runs = {r["_id"]: r for r in db.runs.find()}
        assert len(runs) == 2
        [again] = [r for r in runs.values() if r["_id"] != lost["_id"]]
        assert again["outcome"] == "ok", again
        assert env.missing_articles() == [], "articles missing after the next run"
    finally:
        client.close()


@pytest.fixture(scope="module")
def flaky_replica() -> Iterator[ReplicaProcess]:
    """A replica whose picked paths answer 503 to their first request."""
    extra = ["--no-hostile", "--fault-503", "0.2"]
    with ReplicaProcess(articles=300, seed=9, extra_args=extra) as process:
        yield process


def _delayed_urls(client: redis.Redis, keys: FrontierKeys) -> set[str]:
    return {json.loads(member)["url"] for member in client.zrange(keys.delayed, 0, -1)}


def test_retries_pending_when_redis_lost_its_state_are_queued_again_from_mongodb(
    crawl_env_factory, flaky_replica
) -> None:
    """A retry waits in Redis's delayed set; MongoDB knows of it too (a ``retry`` in the URL's
    failures document, written before the retry is queued). Redis loses everything: the next
    run, which seeds nothing of the site (``seeds=none``), queues each of them again as it was
    (a pending hub or listing page leads on to its articles, as it would have)."""
    env = crawl_env_factory(flaky_replica)
    # Retries wait ten minutes: every one is still pending when Redis loses its state.
    settings = {"CRAWL_RATE": "40", "TASS_RETRY_BACKOFF": "600", "TASS_RETRY_BACKOFF_MAX": "600"}
    worker = env.start_worker("w0", "-a", "since=all", **settings)
    db, keys = env.db(), FrontierKeys(env.prefix)
    client = redis.Redis.from_url(env.redis_url)
    try:
        pending: set[str] = set()
        for _ in range(900):
            pending = _delayed_urls(client, keys)
            if sum(1 for u in pending if u.rstrip("/").rsplit("/", 1)[-1].isdigit()) >= 3:
                break
            assert worker.poll() is None, env.log_text()[-3000:]
            time.sleep(0.1)
        client.delete(*client.scan_iter(match=f"{env.prefix}:*", count=1000))
        assert wait_all([worker], timeout=120) == [EXIT_FAILED], env.log_text()[-4000:]
        recorded = {d["url"]: d for d in db.failures.find({"retry": {"$exists": True}})}
        assert pending <= set(recorded), "every retry Redis held is known to MongoDB"
        for url in pending:
            assert recorded[url]["retry"]["reason"] == "http_503", recorded[url]
        articles = {u for u in pending if u.rstrip("/").rsplit("/", 1)[-1].isdigit()}
        ids = {int(u.rsplit("/", 1)[-1]) for u in articles}
        assert not ids & {d["_id"] for d in db.articles.find({}, {"_id": 1})}
        # The next run seeds nothing of the site: only what MongoDB says was pending.
        flaky_replica.get_json("/__replica__/stats/reset", method="POST")
        assert env.run_workers(1, "-a", "seeds=none") == [0], env.log_text()[-3000:]
        assert "retries that Redis no longer holds are queued again" in env.log_text()
        stored = {d["_id"] for d in db.articles.find({"_id": {"$in": sorted(ids)}}, {"_id": 1})}
        assert stored == ids, "each pending article retry was fetched and stored"
        assert db.failures.count_documents({"retry": {"$exists": True}}) == 0
        [second] = [r for r in db.runs.find() if r["outcome"] == "ok"]
        assert second["counters"]["run/retries_recovered"] == len(recorded)
    finally:
        client.close()
