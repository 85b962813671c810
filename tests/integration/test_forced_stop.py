"""A forced stop (SIGINT twice) exits non-zero and hands its leases back at once.

Issue 11 item 9: a forced exit returned 0 and left its leases to the lease timeout. Here a
worker holds leases of slow pages when it gets two SIGINTs: it must exit ``EXIT_INTERRUPTED``
with no lease left in Redis (with ``TASS_LEASE_SECONDS`` at 600, only the worker handing them
back can explain it), and the next crawl stores every reachable article and ends ``ok``.
"""

from __future__ import annotations

import re
import signal
import time

import pytest
import redis

from crawler.frontier.keys import FrontierKeys
from crawler.outcome import EXIT_INTERRUPTED
from replica.launch import ReplicaProcess

pytestmark = pytest.mark.slow


def test_sigint_twice_exits_130_and_releases_every_lease(crawl_env_factory) -> None:
    slow = ["--no-hostile", "--fault-slow", "0.5", "--slow-ms", "3000"]
    with ReplicaProcess(articles=120, seed=31, extra_args=slow) as replica:
        env = crawl_env_factory(replica)
        client = redis.Redis.from_url(env.redis_url)
        keys = FrontierKeys(env.prefix)
        try:
            worker = env.start_worker("forced", "-a", "since=all", TASS_LEASE_SECONDS="600")
            for _ in range(600):
                if client.zcard(keys.leased) >= 4:
                    break
                assert worker.poll() is None, env.log_text()[-3000:]
                time.sleep(0.1)
            assert client.zcard(keys.leased) >= 4
            worker.send_signal(signal.SIGINT)
            time.sleep(0.5)
            worker.send_signal(signal.SIGINT)
            assert worker.wait(timeout=60) == EXIT_INTERRUPTED, env.log_text()[-3000:]
            assert client.zcard(keys.leased) == 0, "leases left to the lease timeout"
            assert client.zcard(keys.pending) > 0, "they are back in the queue"
            log = env.log_text()
            assert "Received SIGINT twice, forcing unclean shutdown" in log
            assert re.search(r"Forced stop: handed \d+ leases back to the queue", log), log[-2000:]
            # Nothing was lost: the next crawl finishes the run.
            assert env.run_workers(1, timeout=400) == [0], env.log_text()[-3000:]
        finally:
            client.close()
        assert env.missing_articles() == []
        [report] = list(env.db().runs.find())
        assert report["outcome"] == "ok", report
