"""Nightly incremental runs against the replica's time travel.

Day 0 is a full crawl. Each following day the replica publishes about 200 articles and edits
about 5% of the last three days' ones; the day's incremental run (no ``since``) must store
every new article, bring every edited one to its new revision with one revision document per
edit, change nothing else, and fetch few article pages: at most the new, the edited and the
re-check window's. A day-1 run killed halfway and started again ends the same way.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from replica.launch import ReplicaProcess
from tests.crawls import CrawlEnv

pytestmark = pytest.mark.slow

RECHECK_HOURS = 48
OVERLAP_HOURS = 1
SETTINGS = {
    "TASS_RECHECK_HOURS": str(RECHECK_HOURS),
    "TASS_MARK_OVERLAP_HOURS": str(OVERLAP_HOURS),
    "TASS_SINCE_DAYS": "30",
    "CRAWL_RATE": "2000",
}


@pytest.fixture
def replica() -> Iterator[ReplicaProcess]:
    # The site's "today" starts six days back, so that every replica date is in the past.
    start = (date.today() - timedelta(days=6)).isoformat()
    with ReplicaProcess(
        articles=600, seed=13, extra_args=["--no-hostile", "--start-date", start]
    ) as process:
        yield process


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def reachable(truth: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {a["id"]: a for a in truth["articles"] if a["reachable"]}


def fetch_bound(
    truth: dict[str, Any], before: dict[int, dict[str, Any]], previous_marks: dict[str, int]
) -> int:
    """New + edited since the last run + the re-check window + what changed just before the
    last run's sitemap marks (the overlap): the article pages an incremental run may fetch."""
    articles = reachable(truth)
    heads: dict[int, datetime] = {}
    for a in articles.values():
        for feed in a.get("feeds", []):
            heads[feed] = max(heads.get(feed, when(a["published_at"])), when(a["published_at"]))
    window = timedelta(hours=RECHECK_HOURS)
    sitemap_mark = min(
        (v for k, v in previous_marks.items() if k.startswith("sitemap:")), default=0
    )
    overlap_from = datetime.fromtimestamp(sitemap_mark, UTC) - timedelta(hours=OVERLAP_HOURS)
    allowed = set()
    for article_id, a in articles.items():
        new = article_id not in before
        edited = not new and a["revision"] != before[article_id]["revision"]
        recent = any(when(a["published_at"]) >= heads[f] - window for f in a.get("feeds", []))
        overlapping = when(a["modified_at"]) >= overlap_from
        if new or edited or recent or overlapping:
            allowed.add(article_id)
    return len(allowed)


def check_day(env: CrawlEnv, truth: dict[str, Any], first_seen: dict[int, int]) -> None:
    """The store equals the site: every article in its current version, with one revision
    per edit made since the crawler first saw it (``first_seen``: id → the site's revision
    then; filled in here for new articles)."""
    db = env.db()
    articles = reachable(truth)
    for article_id, a in articles.items():
        first_seen.setdefault(article_id, a["revision"])
    stored = {doc["_id"]: doc for doc in db.articles.find()}
    assert sorted(set(articles) - set(stored)) == [], "articles missing"
    assert sorted(set(stored) - set(articles)) == [], "articles invented"
    wrong = {
        i: (stored[i]["revision"], a["revision"] - first_seen[i] + 1)
        for i, a in articles.items()
        if stored[i]["revision"] != a["revision"] - first_seen[i] + 1
    }
    assert wrong == {}, "revisions differ (stored, expected)"
    stale = {
        i: stored[i]["title"]
        for i, a in articles.items()
        if stored[i]["title"] != a["title"] or stored[i]["body"] != "\n\n".join(a["body"])
    }
    assert stale == {}, "stored text differs from the site's current text"
    counts: dict[int, int] = {}
    for doc in db.revisions.find({}, {"article_id": 1}):
        counts[doc["article_id"]] = counts.get(doc["article_id"], 0) + 1
    expected = {
        i: a["revision"] - first_seen[i]
        for i, a in articles.items()
        if a["revision"] > first_seen[i]
    }
    assert counts == expected, "one revision document per edit, none invented"


def run_day(env: CrawlEnv, replica: ReplicaProcess, *args: str) -> dict[str, Any]:
    replica.get_json("/__replica__/stats/reset", method="POST")
    codes = env.run_workers(2, *args, timeout=300, **SETTINGS)
    assert codes == [0, 0], env.log_text()[-4000:]
    return replica.stats()


def marks(env: CrawlEnv) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(env.redis_url)
    try:
        raw = client.hgetall(f"{env.prefix}:marks")
    finally:
        client.close()
    return {k.decode(): int(v) for k, v in raw.items()}


def test_four_nights_of_incremental_runs(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    run_day(env, replica, "-a", "since=all")
    truth = replica.truth()
    first_seen: dict[int, int] = {}
    check_day(env, truth, first_seen)
    for day in range(1, 5):
        before = reachable(truth)
        previous_marks = marks(env)
        assert previous_marks, "the last run kept its high-water marks"
        replica.get_json("/__replica__/advance?days=1", method="POST")
        truth = replica.truth()
        new = set(reachable(truth)) - set(before)
        assert len(new) > 100, f"day {day}: the replica published {len(new)}"
        stats = run_day(env, replica)
        check_day(env, truth, first_seen)
        fetched = stats["by_kind"].get("article", 0)
        bound = fetch_bound(truth, before, previous_marks)
        assert fetched <= bound, f"day {day}: {fetched} article fetches, at most {bound} needed"
        hubs = stats["total"] - fetched - stats["by_kind"].get("redirect", 0)
        assert hubs < 200, f"day {day}: {hubs} hub requests"
        run = env.db().runs.find_one(sort=[("ended_at", -1)])
        assert run["counters"]["frontier/responses"] >= fetched
        assert "frontier/responses/listing" in run["counters"], "hub requests are reported"


def test_a_day_killed_halfway_completes_when_run_again(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    run_day(env, replica, "-a", "since=all")
    first_seen = {i: a["revision"] for i, a in reachable(replica.truth()).items()}
    replica.get_json("/__replica__/advance?days=1", method="POST")
    truth = replica.truth()
    slow = {**SETTINGS, "CRAWL_RATE": "60", "TASS_LEASE_SECONDS": "2"}
    workers = [env.start_worker(f"killed{i}", **slow) for i in range(2)]
    time.sleep(4)
    assert all(w.poll() is None for w in workers), "the day ended before the kill"
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    codes = env.run_workers(2, timeout=300, **SETTINGS)
    assert codes == [0, 0], env.log_text()[-4000:]
    check_day(env, truth, first_seen)
    assert env.db().runs.count_documents({}) == 2, "the killed run was resumed, not restarted"
