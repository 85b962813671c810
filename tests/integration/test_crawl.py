"""The whole crawl: two workers, a 2,000-article replica, real Redis and MongoDB.

Every reachable article of the replica's ground truth must be stored exactly once and equal
the ground truth field by field; nothing else is stored; each hostile URL ends as the ground
truth says (a recorded failure, a skip, or an article); a second run stores nothing new and
fetches no stored article again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow

FIELDS = ("url", "section", "kind", "title", "lead", "dateline", "tags", "mark", "images")


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=2000, seed=11) as process:
        yield process


def expected_document(article: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: article[name] for name in FIELDS},
        "body": "\n\n".join(article["body"]),
        "published_at": datetime.fromisoformat(article["published_at"]),
        "modified_at": datetime.fromisoformat(article["modified_at"]),
        "related": [
            {"id": r["id"], "url": r["url"], "title": r["title"]} for r in article["related"]
        ],
        "duplicate_of": article["duplicate_of"],
    }


def differences(doc: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {name: (doc.get(name), want) for name, want in expected.items() if doc.get(name) != want}


def test_two_workers_store_every_article_once_and_exactly(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    truth = replica.truth()
    codes = env.run_workers(2, "-a", "since=all")
    assert codes == [0, 0], env.log_text()[-5000:]

    db = env.db()
    [run] = list(db.runs.find())
    assert (run["outcome"], run["reasons"]) == ("ok", []), "hostile pages keep a run ok"
    hostile = {h["url"]: h for h in truth["hostile"]}
    wanted = {
        a["id"]: a
        for a in truth["articles"]
        if a["reachable"] and hostile.get(a["url"], {}).get("expect", "article") == "article"
    }
    stored = {doc["_id"]: doc for doc in db.articles.find()}
    assert sorted(set(wanted) - set(stored)) == [], "articles missing"
    assert sorted(set(stored) - set(wanted)) == [], "stored but not a reachable article"

    mismatched = {
        article_id: diff
        for article_id, article in wanted.items()
        if (diff := differences(stored[article_id], expected_document(article)))
    }
    fields = sorted({name for diff in mismatched.values() for name in diff})
    sample = dict(list(mismatched.items())[:5])
    assert mismatched == {}, f"{len(mismatched)} articles differ in {fields}: {sample}"
    for doc in stored.values():
        assert doc["revision"] == 1 and doc["content_hash"]
        assert doc["first_seen_at"] <= doc["last_seen_at"]

    failures = {doc["url"]: doc for doc in db.failures.find()}
    for url, case in hostile.items():
        if case["expect"] == "failure":
            assert url in failures, f"{case['kind']} {url} is not in failures"
            assert failures[url]["reason"], failures[url]
        elif case["expect"] == "skip":
            assert url not in failures and not db.articles.find_one({"url": url})
    # Nothing but hostile URLs failed.
    assert set(failures) <= set(hostile), sorted(set(failures) - set(hostile))[:10]

    # A second run: hubs are walked again, but no stored article is fetched again. The hostile
    # pages that failed are tried once more (their dead letters let them be found again): too
    # few URLs for a failure share to say anything (crawler.outcome), so the run is ok.
    before = replica.stats()
    assert env.run_workers(1, "-a", "since=all") == [0]
    after = replica.stats()
    article_fetches = after["by_kind"].get("article", 0) - before["by_kind"].get("article", 0)
    refetched_failures = sum(1 for h in hostile.values() if h["expect"] == "failure")
    assert article_fetches <= refetched_failures
    assert after["by_kind"]["api_list"] > before["by_kind"].get("api_list", 0)
    again = {doc["_id"]: doc for doc in db.articles.find()}
    assert set(again) == set(stored)
    for article_id, doc in again.items():
        assert doc["revision"] == 1
        assert doc["first_seen_at"] == stored[article_id]["first_seen_at"]
