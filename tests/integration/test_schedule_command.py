"""``scrapy schedule`` as the compose scheduler runs it: a real process, stopped with SIGTERM.

As PID 1 of a container a process that leaves SIGTERM to its default action never sees it;
``init: true`` passes the signal on, and the command must then end by itself with status 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crawler.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, redis_url: str, prefix: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "schedule.log"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "MONGO_URI": "",
        "TASS_REDIS_PREFIX": prefix,
        "CRAWL_SCHEDULE": "0 2 * * *",
        "LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "schedule"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"never logged {text!r}: {log.read_text(errors='replace')}")


def test_sigterm_stops_the_scheduler_between_decisions_with_status_0(
    tmp_path, redis_url, key_prefix
) -> None:
    proc, log = _start(tmp_path, redis_url, key_prefix)
    _wait_for(log, "Requested the crawl due at", proc)  # a fresh install asks for a run now
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    assert "Received SIGTERM: stopping the scheduler" in text
    assert "Scheduler stopped" in text


def test_sigterm_stops_the_scheduler_while_redis_is_away_with_status_0(
    tmp_path, key_prefix
) -> None:
    proc, log = _start(tmp_path, f"redis://127.0.0.1:{free_port()}/0", key_prefix)
    _wait_for(log, "Scheduling step failed", proc)  # nothing listens there: it waits to retry
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert "Scheduler stopped" in log.read_text()
