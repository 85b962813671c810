"""An open run is never joined in silence (issue 11 item 7), and can be abandoned.

A crawl killed mid-run leaves its run open in Redis. A crawl started next with explicit
arguments that differ from the open run's is refused (``EXIT_CONFIG``, a message saying what
differs and how to finish or abandon the run), and stores nothing. ``scrapy run abandon`` ends
the open run as ``failed`` (reason ``abandoned: ...``, in ``runs``); the crawl then starts its
own run, with its own arguments, and ends ``ok``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import redis

from crawler.frontier.keys import FrontierKeys
from crawler.outcome import EXIT_CONFIG
from replica.launch import ReplicaProcess
from tests.crawls import REPO, CrawlEnv

pytestmark = pytest.mark.slow


def abandon_run(env: CrawlEnv) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "run", "abandon"],
        cwd=REPO, env=env.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_different_arguments_are_refused_until_the_open_run_is_abandoned(
    crawl_env_factory,
) -> None:
    with ReplicaProcess(articles=300, seed=12, extra_args=["--no-hostile"]) as replica:
        env = crawl_env_factory(replica)
        db = env.db()
        # An incremental, uncapped run, killed part-way: its run stays open.
        first = env.start_worker("first", CRAWL_RATE="20")
        for _ in range(600):
            if db.articles.count_documents({}) >= 5:
                break
            assert first.poll() is None, env.log_text()[-3000:]
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        client = redis.Redis.from_url(env.redis_url)
        keys = FrontierKeys(env.prefix)
        try:
            open_run = client.get(keys.run)
            assert open_run is not None
            # The killed worker's last batch may still be running on the server (a command the
            # server received before the kill): count once the count stops moving.
            stored = -1
            while stored != (stored := db.articles.count_documents({})):
                time.sleep(1.0)

            args = ("-a", "since=all", "-a", "max_articles=50")
            assert env.run_workers(1, *args, timeout=120) == [EXIT_CONFIG]
            log = env.log_text()
            assert "is still open, and these arguments differ from its: since=all (the open " in (
                log
            )
            assert "max_articles=50 (the open run's: 0)" in log
            assert "'scrapy run abandon'" in log
            assert "ERROR: tass-crawler: run " in log, "the command's own one-line error"
            assert "Task exception was never retrieved" not in log
            assert client.get(keys.run) == open_run, "the open run is untouched"
            assert db.articles.count_documents({}) == stored, "the refused crawl stored nothing"
            assert list(db.runs.find()) == []

            abandon = abandon_run(env)
            assert abandon.returncode == 0, abandon.stdout + abandon.stderr
            assert " abandoned: " in abandon.stdout
            assert client.get(keys.run) is None
            [abandoned] = list(db.runs.find())
            assert abandoned["outcome"] == "failed"
            assert abandoned["reasons"][0].startswith("abandoned: by 'scrapy run abandon' with")
            again = abandon_run(env)
            assert again.returncode == EXIT_CONFIG and "no run is open" in again.stdout

            assert env.run_workers(1, *args, timeout=300) == [0], env.log_text()[-3000:]
            [capped] = [r for r in db.runs.find() if r["_id"] != abandoned["_id"]]
            assert capped["outcome"] == "ok", capped
            assert capped["args"]["since"] == "all" and capped["args"]["max_articles"] == "50"
            assert 0 < capped["counters"]["run/articles"] <= 50
            assert db.articles.count_documents({}) <= stored + 50
        finally:
            client.close()
