"""Container health check for a worker: ``python -m crawler.health``.

Exit 0 while a crawl process on this host has published a heartbeat to Redis within
``--max-age`` seconds (default 60); 1 otherwise, with the reason on stderr.

A worker is *hung* when Redis answers but holds no heartbeat of this host within ``--max-age``
(the heartbeat is published every half second by a live worker, through any MongoDB outage
and while a worker waits for runs). Docker marks such a container unhealthy and leaves it so:
compose restarts a container that exits, never one that is merely unhealthy. With
``--restart-after SECONDS`` the check kills the hung worker once it has seen it hung for that
long (the time it first saw it is kept in ``--state-file``: each check is a new process), so
the container exits and its restart policy starts a new worker. Killing loses nothing: the
requests a worker holds are leased, and return to the queue when it stops renewing them.
The worker is found as the ``scrapy crawl`` child of the container's init (``init: true``);
without one, the worker is PID 1, which nothing inside the container may kill, and the check
says so.

Redis being unreachable is not the worker's fault (it holds its work and retries): the
check reports it (exit 1; exit 0 with ``--redis-away-ok``, for a Kubernetes liveness probe,
whose failure restarts the container) and never restarts a worker for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scrapy.utils.project import get_project_settings

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.frontier.run import RunCoordinator

DEFAULT_STATE_FILE = "/tmp/tass-health-hung-since"  # the container's own /tmp


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one check found: the exit status, why, the hung-since time to keep, and whether
    to restart the worker now."""

    healthy: bool
    reason: str
    hung_since: float | None
    restart: bool = False


def judge(
    age: float | None,
    *,
    redis_error: str | None,
    max_age: float,
    now: float,
    hung_since: float | None,
    restart_after: float | None,
    redis_away_ok: bool = False,
) -> Verdict:
    """The decision of one check, from this host's heartbeat ``age`` (None: none in Redis) or
    the error that kept Redis from answering, and the time a hang was first seen."""
    if redis_error is not None:
        # No judgement of the worker: keep what was known of a hang, restart nothing.
        return Verdict(redis_away_ok, f"Redis unreachable: {redis_error}", hung_since)
    if age is not None and age <= max_age:
        return Verdict(True, f"heartbeat {age:.1f}s ago", None)
    since = now if hung_since is None or hung_since > now else hung_since
    hung_for = now - since
    reason = f"no heartbeat from this host within {max_age:.0f}s (hung for {hung_for:.0f}s)"
    restart = restart_after is not None and hung_for >= restart_after
    return Verdict(False, reason, since, restart)


async def heartbeat_age(url: str, prefix: str) -> float | None:
    client = open_redis(url)
    try:
        return await RunCoordinator(client, FrontierKeys(prefix)).heartbeat_age(
            socket.gethostname()
        )
    finally:
        await client.aclose()


def worker_pids(init_pid: int = 1, proc: Path = Path("/proc")) -> list[int]:
    """The ``scrapy crawl`` processes whose parent is ``init_pid``."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        parent = int(stat.rpartition(")")[2].split()[1])
        names = [Path(arg.decode(errors="replace")).name for arg in argv]
        if parent == init_pid and "scrapy" in names and "crawl" in names[names.index("scrapy") :]:
            found.append(int(entry.name))
    return sorted(found)


def _read_state(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_state(path: Path, hung_since: float | None) -> None:
    if hung_since is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(f"{hung_since}\n")


def restart(init_pid: int) -> str:
    """Kill the hung worker under ``init_pid``; what was done, for the check's output."""
    pids = worker_pids(init_pid)
    if not pids:
        return (
            f"cannot restart: no 'scrapy crawl' process under PID {init_pid} "
            "(run the container with an init: compose `init: true`)"
        )
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # it ended by itself
    return f"killed the hung worker (pid {', '.join(map(str, pids))}): the container restarts it"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument(
        "--restart-after",
        type=float,
        default=None,
        help="kill a worker hung this many seconds, for its container to restart it",
    )
    parser.add_argument("--state-file", type=Path, default=Path(DEFAULT_STATE_FILE))
    parser.add_argument("--init-pid", type=int, default=1, help="the worker's parent (init)")
    parser.add_argument(
        "--redis-away-ok", action="store_true", help="exit 0 when Redis cannot be reached"
    )
    args = parser.parse_args(argv)
    settings = get_project_settings()
    age: float | None = None
    error: str | None = None
    try:
        age = asyncio.run(heartbeat_age(redis_url(settings), settings.get("TASS_REDIS_PREFIX")))
    except Exception as exc:
        error = str(exc) or type(exc).__name__
    use_state = args.restart_after is not None
    verdict = judge(
        age,
        redis_error=error,
        max_age=args.max_age,
        now=time.time(),
        hung_since=_read_state(args.state_file) if use_state else None,
        restart_after=args.restart_after,
        redis_away_ok=args.redis_away_ok,
    )
    message = verdict.reason
    if verdict.restart:
        message += "; " + restart(args.init_pid)
        _write_state(args.state_file, None)  # the next worker starts with a clean slate
    elif use_state:
        _write_state(args.state_file, verdict.hung_since)
    print(f"{'healthy' if verdict.healthy else 'unhealthy'}: {message}", file=sys.stderr)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
