"""``scrapy status``, the progress line and the metrics during a real two-worker crawl.

Two ``scrapy crawl tass`` processes crawl the replica (real Redis and MongoDB), each with its
Prometheus endpoint on; while they run, ``scrapy status --json`` is asked again and again
from another process: it shows both workers, and in every look the queue adds up
(``pending + delayed + leased + done + failed = enqueued``). A URL fed before the crawl on
``start_urls`` (an article outside the run's sections) is fetched in the run; a bad payload is
kept with its reason. The metrics endpoints serve the counters during the crawl. No timing is
asserted: the crawl is only paced (``CRAWL_RATE``) so that it lasts long enough to be looked at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from crawler.embedded import free_port
from crawler.frontier.keys import FrontierKeys
from replica.launch import ReplicaProcess
from tests.crawls import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=300, seed=21, extra_args=["--no-hostile"]) as process:
        yield process


def status(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "status", *args],
        cwd=REPO, env=env.env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_status_metrics_and_feed_during_a_two_worker_crawl(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    keys = FrontierKeys(env.prefix)
    world = next(
        a for a in replica.truth()["articles"] if a["reachable"] and a["section"] == "world"
    )
    client = redis.Redis.from_url(env.redis_url)
    client.lpush(keys.start_urls, world["url"])
    client.lpush(keys.start_urls, '{"url": "https://example.org/world/1"}')
    ports = [free_port(), free_port()]
    workers = [
        env.start_worker(
            f"worker-{i}", "-a", "since=all", "-a", "sections=politics,economy",
            CRAWL_RATE="60", TASS_METRICS_ENABLED="true", TASS_METRICS_PORT=str(port),
            TASS_METRICS_ADDRESS="127.0.0.1", LOGSTATS_INTERVAL="2",
        )
        for i, port in enumerate(ports)
    ]  # fmt: skip
    looks: list[dict] = []
    scrapes: list[dict[str, float]] = []
    done = threading.Event()

    def scrape_until_done() -> None:
        # Apart from the looks: a ``scrapy status`` call takes a second or more on a loaded
        # machine, and the endpoints go with their workers.
        while not done.wait(0.2):
            scrapes.extend(found for port in ports if (found := scrape(port)))

    scraper = threading.Thread(target=scrape_until_done, daemon=True)
    scraper.start()
    deadline = time.monotonic() + 400
    try:
        while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
            answer = status(env, "--json")
            assert answer.returncode == 0, answer.stderr
            looks.append(json.loads(answer.stdout))
    finally:
        done.set()
        scraper.join()
    codes = [w.wait(timeout=60) for w in workers]
    log = env.log_text()
    assert codes == [0, 0], log[-4000:]

    during = [look for look in looks if look["run"] is not None]
    assert during, "no look while the run was going"
    for look in during:
        q = look["queue"]
        total = q["pending"] + q["delayed"] + q["leased"] + q["done"] + q["failed"]
        assert total == q["enqueued"], q
    both = [look for look in during if sum(w["alive"] for w in look["workers"]) == 2]
    assert both, "no look showed both workers"
    pids = {w["pid"] for w in both[-1]["workers"]}
    assert pids == {w.pid for w in workers}
    assert all(
        w["mode"] == "crawl" and w["run"] == both[-1]["run"]["id"] for w in both[-1]["workers"]
    )
    assert max(look["queue"]["done"] for look in during) > 0

    stored = [
        s["tass_articles_stored_total{}"] for s in scrapes if "tass_articles_stored_total{}" in s
    ]
    assert stored and max(stored) > 0, "the metrics served the counters during the crawl"
    assert any('tass_queue_requests{"state": "pending"}' in s for s in scrapes)

    db = env.db()
    [run] = list(db.runs.find())
    assert run["outcome"] == "ok", run["reasons"]
    assert db.articles.find_one({"_id": world["id"]}) is not None, "the fed article was fetched"
    assert run["counters"]["feed/queued"] == 1 and run["counters"]["feed/rejected"] == 1
    [rejected] = [json.loads(r) for r in client.lrange(keys.feed_rejected, 0, -1)]
    assert rejected["reason"] == "not_site_url"
    client.close()

    after = status(env)
    assert after.returncode == 0, after.stderr
    assert "run      none going" in after.stdout
    assert f"{run['_id']}" in after.stdout and "  ok  " in after.stdout
    assert f"{db.articles.count_documents({}):,} articles" in after.stdout
    assert "cluster fetched" in log and "this worker:" in log, "the progress line"
    assert "Crawled " not in log, "no per-process LogStats line"
