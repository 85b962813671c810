"""Feeding URLs the scrapy-redis way to a standing worker: ``LPUSH <prefix>:start_urls`` (plain
URLs and scrapy-redis's JSON payload) and ``scrapy enqueue``.

After a first run has stored the whole replica, a standing worker (``-a mode=worker``) gets
URLs pushed both ways: it begins a run of its own for them (no site seeds), fetches each URL
once (a URL pushed twice is fetched once) although every one is already stored, stores them
again, and keeps every bad payload with its reason. ``scrapy enqueue`` refuses a URL that is
not the site's and then queues nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import pytest
import redis

from crawler.frontier.keys import FrontierKeys
from replica.launch import ReplicaProcess
from tests.crawls import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    today = date.today().isoformat()
    with ReplicaProcess(
        articles=80, seed=9, extra_args=["--no-hostile", "--start-date", today]
    ) as process:
        yield process


def enqueue(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "enqueue", *args],
        cwd=REPO, env=env.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_urls_pushed_with_lpush_and_scrapy_enqueue_are_fetched_once_each_and_stored(
    crawl_env_factory, replica
) -> None:
    env = crawl_env_factory(replica)
    keys = FrontierKeys(env.prefix)
    assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
    db = env.db()
    [first] = list(db.runs.find())
    urls = [a["url"] for a in replica.truth()["articles"] if a["reachable"]][:4]
    assert db.articles.count_documents({"url": {"$in": urls}}) == 4

    refused = enqueue(env, urls[2], "https://example.org/world/1")
    assert refused.returncode == 2 and "not_site_url" in refused.stderr, refused.stderr
    client = redis.Redis.from_url(env.redis_url)
    assert client.llen(keys.start_urls) == 0, "a refused command queues nothing"

    worker = env.start_worker("standing", "-a", "mode=worker")
    try:
        time.sleep(3)
        assert worker.poll() is None, env.log_text()[-3000:]
        assert db.runs.count_documents({}) == 1, "a standing worker begins no run by itself"
        # Every entry must be fed while the one run they begin still goes (a run that has
        # ended leaves later entries to a run of their own): ``scrapy enqueue`` first, as its
        # process takes a second or more to start, then the pushes in one pipeline, within
        # milliseconds of it and well inside the run's fetches.
        queued = enqueue(env, urls[2], urls[3])
        assert queued.returncode == 0, queued.stderr
        assert queued.stdout.startswith(f"queued 2 URLs on {keys.start_urls}")
        payload = json.dumps({"url": urls[1], "meta": {"asked_by": "test"}})
        with client.pipeline() as pushes:
            pushes.lpush(keys.start_urls, urls[0])
            pushes.lpush(keys.start_urls, payload)
            pushes.lpush(keys.start_urls, urls[0])  # the same URL again
            pushes.lpush(keys.start_urls, "not a url", '{"meta": {}}', "https://example.org/a/1")
            pushes.execute()
        deadline = time.monotonic() + 120
        while db.runs.count_documents({}) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert worker.poll() is None, env.log_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=120)
    assert code == 0, env.log_text()[-3000:]

    [fed] = list(db.runs.find({"_id": {"$ne": first["_id"]}}))
    assert fed["args"].get("seeds") == "none" and fed["outcome"] == "ok", fed
    c = fed["counters"]
    assert c["frontier/responses/article"] == 4, "each fed URL fetched once, nothing else"
    assert c.get("run/seeds", 0) == 0
    assert (c["feed/queued"], c["feed/duplicates"], c["feed/rejected"]) == (4, 1, 3)
    for url in urls:
        doc = db.articles.find_one({"url": url})
        assert doc is not None and doc["last_seen_at"] > first["ended_at"], url
    assert db.articles.count_documents({}) == first["counters"]["run/articles"]
    rejected = [json.loads(r) for r in client.lrange(keys.feed_rejected, 0, -1)]
    assert sorted(r["reason"] for r in rejected) == ["no_url", "not_a_url", "not_site_url"]
    assert client.llen(keys.start_urls) == 0 and client.zcard(keys.feed_claimed) == 0
    client.close()
