"""A run's outcome is true, and ``scrapy crawl tass`` exits with it (``crawler.outcome``).

Real worker processes, real Redis and MongoDB: a site that cannot be reached makes both
workers of the run exit ``EXIT_FAILED`` (the one that ended the run and the one that read the
outcome it published), with ``outcome: failed`` and the reason in ``runs``, every seed in
``failures``. (A run with some hostile pages stays ``ok``: ``test_crawl``.)
"""

from __future__ import annotations

import pytest

from crawler.embedded import free_port
from crawler.outcome import EXIT_FAILED
from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow


def test_an_unreachable_site_fails_the_run_and_every_worker_exits_non_zero(
    crawl_env_factory,
) -> None:
    nowhere = ReplicaProcess(base_url=f"http://127.0.0.1:{free_port()}")  # nothing listens
    env = crawl_env_factory(nowhere)
    codes = env.run_workers(2, timeout=300, TASS_RETRY_BACKOFF="0.1", RETRY_TIMES="1")
    log = env.log_text()
    assert codes == [EXIT_FAILED, EXIT_FAILED], log[-4000:]
    db = env.db()
    [run] = list(db.runs.find())
    assert run["outcome"] == "failed", run
    assert run["reasons"][0].startswith("site_unreachable: every seed of the run failed (12 of 12")
    failures = list(db.failures.find())
    assert len(failures) == 12 and all(f["reason"].startswith("network:") for f in failures)
    assert db.articles.count_documents({}) == 0
    assert "ended (by another worker): failed (site_unreachable" in log
    assert "Task exception was never retrieved" not in log
