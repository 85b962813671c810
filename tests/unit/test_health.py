"""The worker health check's decision (the clock passed in) and how it finds the worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from crawler.health import judge, worker_pids


def _judge(age, *, now=1000.0, hung_since=None, restart_after=None, **kw):
    return judge(
        age,
        redis_error=kw.pop("redis_error", None),
        max_age=60,
        now=now,
        hung_since=hung_since,
        restart_after=restart_after,
        **kw,
    )


def test_a_fresh_heartbeat_is_healthy_and_forgets_a_hang() -> None:
    verdict = _judge(2.5, hung_since=900.0, restart_after=120)
    assert verdict.healthy and not verdict.restart and verdict.hung_since is None


@pytest.mark.parametrize("age", [None, 61.0])
def test_a_stale_or_missing_heartbeat_starts_the_clock(age) -> None:
    verdict = _judge(age, restart_after=120)
    assert not verdict.healthy and not verdict.restart
    assert verdict.hung_since == 1000.0
    assert "no heartbeat from this host within 60s" in verdict.reason


def test_the_worker_is_restarted_once_seen_hung_long_enough() -> None:
    assert not _judge(None, now=1119.0, hung_since=1000.0, restart_after=120).restart
    verdict = _judge(None, now=1120.0, hung_since=1000.0, restart_after=120)
    assert verdict.restart and verdict.hung_since == 1000.0 and "hung for 120s" in verdict.reason


def test_without_restart_after_a_hung_worker_is_only_reported() -> None:
    verdict = _judge(None, now=10_000.0, hung_since=1000.0)
    assert not verdict.healthy and not verdict.restart


def test_an_old_heartbeat_after_an_outage_is_not_a_long_hang() -> None:
    # Redis came back after an hour away: the heartbeat is an hour old, but the check has
    # not seen the worker hung before, so the clock starts now rather than an hour ago.
    verdict = _judge(3600.0, now=5000.0, restart_after=120)
    assert not verdict.restart and verdict.hung_since == 5000.0


def test_redis_unreachable_is_not_the_workers_fault() -> None:
    verdict = _judge(None, redis_error="Connection refused", hung_since=900.0, restart_after=1)
    assert not verdict.healthy and not verdict.restart
    assert verdict.hung_since == 900.0  # what was known of a hang is kept, not advanced
    assert "Redis unreachable: Connection refused" in verdict.reason
    assert _judge(None, redis_error="refused", redis_away_ok=True).healthy


def test_a_hang_time_from_the_future_is_not_trusted() -> None:
    verdict = _judge(None, now=1000.0, hung_since=5000.0, restart_after=120)
    assert verdict.hung_since == 1000.0 and not verdict.restart


def test_worker_pids_finds_the_scrapy_crawl_child_of_the_init_only() -> None:
    # A stand-in init (any parent process) with two children: the worker and something else.
    init = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "worker = [sys.executable, '-c', 'import time; time.sleep(60)', 'scrapy', 'crawl']\n"
            "a = subprocess.Popen(worker)\n"
            "b = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(a.pid, b.pid, flush=True)\n"
            "a.wait(); b.kill(); b.wait()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert init.stdout is not None
        worker, other = map(int, init.stdout.readline().split())
        for _ in range(100):
            if worker_pids(init.pid):
                break
            time.sleep(0.05)
        assert worker_pids(init.pid) == [worker]
        assert other not in worker_pids(init.pid)
        assert worker_pids(worker) == []  # it has no children
    finally:
        init.kill()
        init.wait()
        init.stdout.close()
        for pid in (worker, other):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
