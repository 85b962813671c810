"""The drift alarm in real runs: the site's markup changes between two nightly crawls.

A backfill and a nightly run on the default markup raise no alarm (the same markup, other
articles); then the replica "redesigns" (``--markup alt`` switched on while it runs) and the
next nightly run's report names the fields whose signals changed, logs them, and is not a clean
run. The crawler extracts the new shapes as well as the old (``test_extraction``): the alarm is
about where the values came from, which is what an operator must hear about.
"""

from __future__ import annotations

import pytest

from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow


def test_a_markup_switch_between_two_runs_raises_a_drift_alarm(crawl_env_factory) -> None:
    with ReplicaProcess(articles=200, seed=31) as replica:
        env = crawl_env_factory(replica)
        assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
        # Two days between runs: a nightly run fetches only the new and the edited articles,
        # and one day's 200 hold fewer than DRIFT_MIN_ARTICLES theme labels (about a quarter
        # have one), too few for the mark's figures to be compared.
        replica.advance(2)
        assert env.run_workers(1) == [0], env.log_text()[-3000:]
        replica.switch(markup="alt")
        replica.advance(2)
        codes = env.run_workers(1)
        truth = replica.truth()
        db = env.db()
        runs = list(db.runs.find().sort("ended_at", 1))

    assert len(runs) == 3
    backfill, same, redesigned = (r["drift"] for r in runs)
    assert backfill["baseline"] is None
    assert same["baseline"]["runs"] == [runs[0]["_id"]]
    assert same["alarms"] == [], same["alarms"]
    assert redesigned["baseline"]["runs"] == [runs[1]["_id"], runs[0]["_id"]]
    assert min(r["drift"]["articles"] for r in runs) >= 50  # each one is compared
    print("\nafter the redesign:", *(a["message"] for a in redesigned["alarms"]), sep="\n  ")
    named = {(a["field"], a["kind"], a["signal"]) for a in redesigned["alarms"]}
    # The guessed class name of the theme label is gone from the new markup: the label now
    # comes from the structural rule and the feed alone.
    assert ("mark", "signal", "class") in named, redesigned["alarms"]
    for alarm in redesigned["alarms"]:
        assert alarm["before"] - alarm["now"] >= redesigned["threshold"] or (
            alarm["kind"] == "disagreement"
        )
        assert alarm["message"].startswith(f"{alarm['field']}: ")
        assert f"Drift alarm in run {runs[2]['_id']}: {alarm['message']}" in env.log_text()
    # The run's outcome is degraded, not ok, with the alarms among its reasons; the worker
    # exits with it (4), so cron and Kubernetes see it.
    assert [r["outcome"] for r in runs] == ["ok", "ok", "degraded"], [r["reasons"] for r in runs]
    assert any(reason.startswith("drift: mark: ") for reason in runs[2]["reasons"])
    assert codes == [4]
    # Nothing was lost to the redesign: every reachable article is stored.
    hostile = {h["url"] for h in truth["hostile"]}
    wanted = {a["id"] for a in truth["articles"] if a["reachable"] and a["url"] not in hostile}
    stored = {doc["_id"] for doc in db.articles.find({}, {"_id": 1})}
    assert wanted <= stored, sorted(wanted - stored)[:10]
