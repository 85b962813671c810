"""A site that is not serving us is a failed run, not a quiet night (issue 11 item 5).

The replica's ``--fault-challenge`` answers 200 with a bot-challenge page (no article, no
feed, no link). On every URL: the run fails with ``site_not_serving`` (every seed failed: the
hubs are no hubs, the feeds no feeds), each seed is in ``failures``, nothing is stored, and the
crawl exits ``EXIT_FAILED``. On a tenth of the paths: each challenged article is fetched at
most twice in the run (once, and once more when found again), is in ``failures`` and is not
stored; the run is ``degraded`` and the crawl exits ``EXIT_DEGRADED``. (At CRAWL_RATE=40 the
failures land between the rediscoveries: without the per-run cap, 10 of 32 challenged
articles were fetched 3 times.)
"""

from __future__ import annotations

import pytest

from crawler.outcome import EXIT_DEGRADED, EXIT_FAILED
from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow


def test_a_challenge_on_every_url_fails_the_run(crawl_env_factory) -> None:
    blocked = ["--no-hostile", "--fault-challenge", "1"]
    with ReplicaProcess(articles=100, seed=41, extra_args=blocked) as replica:
        env = crawl_env_factory(replica)
        assert env.run_workers(2, timeout=300) == [EXIT_FAILED, EXIT_FAILED], env.log_text()[-3000:]
        db = env.db()
        [run] = list(db.runs.find())
        assert run["outcome"] == "failed", run
        assert run["reasons"][0].startswith(
            "site_not_serving: every seed of the run failed (12 of 12: content 12)"
        ), run["reasons"]
        reasons = sorted(f["reason"] for f in db.failures.find())
        assert reasons == ["bad_xml"] * 2 + ["not_hub"] * 10, reasons
        assert db.articles.count_documents({}) == 0


def test_a_challenged_article_is_fetched_at_most_twice_in_a_run(crawl_env_factory) -> None:
    some = ["--no-hostile", "--fault-challenge", "0.1"]
    with ReplicaProcess(articles=300, seed=42, extra_args=some) as replica:
        env = crawl_env_factory(replica)
        assert env.run_workers(2, "-a", "since=all", timeout=400, CRAWL_RATE="40") == [
            EXIT_DEGRADED,
            EXIT_DEGRADED,
        ], env.log_text()[-3000:]
        challenged = replica.stats()["challenged"]
        paths = {a["path"]: a["id"] for a in replica.truth()["articles"]}
        articles = {path: n for path, n in challenged.items() if path in paths}
        assert len(articles) >= 10, challenged
        assert max(articles.values()) <= 2, {p: n for p, n in articles.items() if n > 2}
        assert any(n == 2 for n in articles.values()), "found again, fetched once more"
        db = env.db()
        failed = {f["article_id"]: f for f in db.failures.find({"article_id": {"$ne": None}})}
        stored = {d["_id"] for d in db.articles.find({}, {"_id": 1})}
        for path in articles:
            aid = paths[path]
            assert aid in failed and aid not in stored, path
        [run] = list(db.runs.find())
        assert run["outcome"] == "degraded", run
        assert any(r.startswith("failures: ") for r in run["reasons"]), run["reasons"]
