"""The cluster's concurrency budget is shared: it counts only requests at the site.

Issue 11 item 9: each worker leases up to ``CONCURRENT_REQUESTS`` requests ahead; when the
budget counted those leases, the first worker's buffer held the whole ``CRAWL_CONCURRENCY``
and a second worker fetched 0-43 requests of a 509-request run. Here both workers' buffers are
the whole budget (4 and 4), every page answers slowly (so the budget, not the rate, is what
binds), and both must fetch a fair share, with never more than 4 requests at the replica at
once, and every reachable article stored.
"""

from __future__ import annotations

import re

import pytest

from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow

REQUESTS = re.compile(r"'downloader/request_count': (\d+)")


def test_two_workers_share_the_concurrency_budget(crawl_env_factory) -> None:
    slow = ["--no-hostile", "--fault-slow", "1.0", "--slow-ms", "250"]
    with ReplicaProcess(articles=120, seed=21, extra_args=slow) as replica:
        env = crawl_env_factory(replica)
        codes = env.run_workers(
            2, "-a", "since=all", timeout=400,
            CRAWL_RATE="100", CRAWL_CONCURRENCY="4", CONCURRENT_REQUESTS="4",
        )  # fmt: skip
        assert codes == [0, 0], env.log_text()[-3000:]
        stats = replica.stats()
        assert stats["max_in_flight"] <= 4, stats
        # Scrapy leaves the count out of its stats when a worker sent nothing.
        logs = [(env.logs / f"worker-{i}.log").read_text() for i in range(2)]
        counts = [int((REQUESTS.findall(log) or ["0"])[-1]) for log in logs]
        total = sum(counts)
        assert total >= 120, counts
        assert min(counts) >= 0.25 * total, f"one worker starved the other: {counts}"
        assert env.missing_articles() == []
        [report] = list(env.db().runs.find())
        assert report["outcome"] == "ok", report
