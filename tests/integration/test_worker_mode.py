"""The compose way of running: ``scrapy schedule`` asks, long-lived workers crawl.

Workers in ``-a mode=worker`` start no run on their own; ``scrapy schedule --once`` on a fresh
install requests one at once; a worker takes it, the run ends with one report, and the
workers stay up for the next one until they are stopped (SIGTERM), cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import pytest

from replica.launch import ReplicaProcess
from tests.crawls import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    # Today's site, so that a first incremental run (the last TASS_SINCE_DAYS) covers it all.
    today = date.today().isoformat()
    with ReplicaProcess(
        articles=200, seed=4, extra_args=["--no-hostile", "--start-date", today]
    ) as process:
        yield process


def test_scheduled_run_is_crawled_by_standing_workers(crawl_env_factory, replica) -> None:
    env = crawl_env_factory(replica)
    workers = [env.start_worker(f"worker{i}", "-a", "mode=worker") for i in range(2)]
    try:
        time.sleep(3)
        assert all(w.poll() is None for w in workers), env.log_text()[-3000:]
        assert env.db().runs.count_documents({}) == 0, "a worker started a run by itself"
        asked = subprocess.run(
            [sys.executable, "-m", "scrapy", "schedule", "--once"],
            cwd=REPO, env=env.env(), capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert asked.stdout.startswith("started"), asked.stdout + asked.stderr
        deadline = time.monotonic() + 120
        while env.db().runs.count_documents({}) == 0 and time.monotonic() < deadline:
            time.sleep(1)
        run = env.db().runs.find_one()
        assert run is not None, env.log_text()[-3000:]
        reachable = [a for a in replica.truth()["articles"] if a["reachable"]]
        assert env.db().articles.count_documents({}) == len(reachable)
        assert all(w.poll() is None for w in workers), "workers stay up between runs"
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    assert codes == [0, 0], env.log_text()[-3000:]
