"""Nightly incremental runs against the replica's time travel, under every sitemap layout.

Day 0 is a full crawl. Each following day the replica publishes about 200 articles and edits
about 5% of the last three days' ones; the day's incremental run (no ``since``) must store
every new article, bring every edited one to its new revision with one revision document per
edit, change nothing else, and fetch few article pages: at most 1.1 x (new + edited) plus what
the run's re-check fetched (its sample, and the window of articles whose sitemap entry has no
``lastmod``), whatever way the sitemaps are cut, named, reshuffled or stripped of ``lastmod``
(replica ``--sitemap-layout``, ``--sitemap-no-lastmod``). The figures are printed per day. A
day-1 run killed halfway and started again ends the same way.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from replica.launch import ReplicaProcess
from tests.crawls import CrawlEnv

pytestmark = pytest.mark.slow

SETTINGS = {"CRAWL_RATE": "2000"}
LAYOUTS = {
    "default": {"sitemap_layout": "default", "sitemap_no_lastmod": 0.0},
    "rolling": {"sitemap_layout": "rolling", "sitemap_chunk": 150, "sitemap_no_lastmod": 0.0},
    "monthly": {"sitemap_layout": "monthly", "sitemap_no_lastmod": 0.0},
    "daily": {"sitemap_layout": "daily", "sitemap_no_lastmod": 0.0},
    "shuffle": {"sitemap_layout": "shuffle", "sitemap_no_lastmod": 0.0},
    "no-lastmod": {"sitemap_layout": "shuffle", "sitemap_no_lastmod": 0.2},
}
ALL_LAYOUTS = bool(os.environ.get("TASS_TEST_ALL_LAYOUTS"))
"""Set: also four nights under each layout alone (six more crawls of five runs: minutes)."""
PLANS = [
    # The layout switched every night (day 0, the full crawl, has the default): every night's
    # sitemaps are cut, named and ordered differently from the last.
    pytest.param(["rolling", "monthly", "daily", "shuffle"], id="a-new-layout-every-night"),
    pytest.param(["no-lastmod"] * 4, id="no-lastmod"),
] + [
    pytest.param(
        [name] * 4,
        id=name,
        marks=pytest.mark.skipif(not ALL_LAYOUTS, reason="TASS_TEST_ALL_LAYOUTS unset"),
    )
    for name in LAYOUTS
    if name != "no-lastmod"
]


def start_replica(*extra: str, articles: int = 400) -> ReplicaProcess:
    # The site's "today" starts six days back, so that every replica date is in the past.
    start = (date.today() - timedelta(days=6)).isoformat()
    return ReplicaProcess(
        articles=articles, seed=13, extra_args=["--no-hostile", "--start-date", start, *extra]
    )


@pytest.fixture
def replica() -> Iterator[ReplicaProcess]:
    with start_replica(articles=600) as process:
        yield process


def reachable(truth: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {a["id"]: a for a in truth["articles"] if a["reachable"]}


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


def run_day(env: CrawlEnv, replica: ReplicaProcess, *args: str, workers: int = 1) -> dict[str, Any]:
    replica.get_json("/__replica__/stats/reset", method="POST")
    codes = env.run_workers(workers, *args, timeout=300, **SETTINGS)
    assert codes == [0] * workers, env.log_text()[-4000:]
    return replica.stats()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("nights", PLANS)
def test_four_nights_fetch_what_changed_whatever_the_sitemap_layout(
    crawl_env_factory, nights: list[str]
) -> None:
    with start_replica() as replica:
        env = crawl_env_factory(replica)
        run_day(env, replica, "-a", "since=all")
        truth = replica.truth()
        first_seen: dict[int, int] = {}
        check_day(env, truth, first_seen)
        for day, layout in enumerate(nights, start=1):
            before = reachable(truth)
            replica.switch(**LAYOUTS[layout])
            replica.get_json("/__replica__/advance?days=1", method="POST")
            truth = replica.truth()
            now = reachable(truth)
            new = set(now) - set(before)
            edited = {
                i for i in set(now) & set(before) if now[i]["revision"] != before[i]["revision"]
            }
            assert len(new) > 100, f"day {day}: the replica published {len(new)}"
            stats = run_day(env, replica)
            check_day(env, truth, first_seen)
            fetched = stats["by_kind"].get("article", 0)
            report = env.db().runs.find_one(sort=[("ended_at", -1)])
            changes = report["changes"]
            rc = changes["recheck"]
            recheck = rc["sampled"] + rc["window"] + rc["bare"]
            bound = 1.1 * (len(new) + len(edited)) + recheck
            print(
                f"{layout} day {day}: new {len(new)}, edited {len(edited)}, article fetches "
                f"{fetched} (bound {bound:.0f}); feeds announced {changes['new']} new, "
                f"{changes['changed']} changed; re-checked {rc['sampled']} sampled "
                f"({rc['sample_edits']} edits), {rc['window']} window ({rc['window_edits']}), "
                f"{rc['bare']} bare ({rc['bare_edits']}); trust {changes['trust']}, window "
                f"{changes['window_hours']} h -> {changes['next_window_hours']} h"
            )
            assert fetched <= bound, f"day {day}: {fetched} article fetches, bound {bound:.0f}"
            hubs = stats["total"] - fetched - stats["by_kind"].get("redirect", 0)
            assert hubs < 200, f"day {day}: {hubs} hub requests"
            assert report["counters"]["frontier/responses"] >= fetched
            if layout != "no-lastmod":
                assert rc["bare"] == 0, "every entry has a lastmod: no article is bare"
        # Never-edited articles are at revision 1 (check_day holds every revision exactly).
        db = env.db()
        never = [i for i, a in reachable(truth).items() if a["revision"] == first_seen[i]]
        assert db.articles.count_documents({"_id": {"$in": never}, "revision": 1}) == len(never)


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
    # A killed worker counts as gone once its heartbeat is a lease old (``worker_stale``): with
    # the default lease the resumed run would wait a minute for the killed ones to lapse.
    codes = env.run_workers(2, timeout=300, **SETTINGS, TASS_LEASE_SECONDS="2")
    assert codes == [0, 0], env.log_text()[-4000:]
    check_day(env, truth, first_seen)
    assert env.db().runs.count_documents({}) == 2, "the killed run was resumed, not restarted"
