"""The worker health check against a real worker process that hangs (SIGSTOP): reported, then
killed so that its container's restart policy starts a new one; Redis away kills nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crawler.embedded import free_port
from crawler.health import worker_pids

REPO = Path(__file__).resolve().parents[2]


def test_a_hung_worker_is_killed_for_its_container_to_restart(
    tmp_path, redis_url, mongo_uri, mongo_db_name, key_prefix
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "TASS_REDIS_PREFIX": key_prefix,
        "TASS_BASE_URL": "http://127.0.0.1:9",  # a standing worker fetches nothing unasked
        "LOG_LEVEL": "INFO",
    }
    state = tmp_path / "hung-since"
    log = tmp_path / "worker.log"

    def check(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "crawler.health", "--init-pid", str(init.pid)]
        return subprocess.run(
            [*command, "--state-file", str(state), *args],
            cwd=REPO, env={**env, **extra}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    # A stand-in for the container's init: the worker is its child, and it exits with it.
    init_code = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
    with log.open("wb") as out:
        init = subprocess.Popen(
            [
                sys.executable, "-c", init_code,
                sys.executable, "-m", "scrapy", "crawl", "tass", "-a", "mode=worker",
            ],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    worker = None
    try:
        for _ in range(600):
            if check("--max-age", "5").returncode == 0:
                break
            assert init.poll() is None, log.read_text()
            time.sleep(0.1)
        else:
            raise AssertionError(f"the worker never published a heartbeat: {log.read_text()}")
        [worker] = worker_pids(init.pid)

        # Redis away: unhealthy (or not, for a liveness probe), and never a reason to restart.
        away = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
        result = check("--restart-after", "0", **away)
        assert result.returncode == 1 and "Redis unreachable" in result.stderr
        assert check("--redis-away-ok", **away).returncode == 0
        assert init.poll() is None and not state.exists()

        os.kill(worker, signal.SIGSTOP)  # hung: alive, but publishing nothing
        for _ in range(600):
            result = check("--max-age", "1", "--restart-after", "3600")
            if result.returncode == 1:
                break
            time.sleep(0.1)
        assert "no heartbeat from this host within 1s" in result.stderr
        assert init.poll() is None and state.exists()  # reported, not yet restarted

        result = check("--max-age", "1", "--restart-after", "0")
        assert result.returncode == 1
        assert f"killed the hung worker (pid {worker})" in result.stderr
        assert init.wait(timeout=60) != 0  # the container exits; its restart policy acts
        assert not state.exists()
    finally:
        for pid in (init.pid, worker):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        init.wait()
