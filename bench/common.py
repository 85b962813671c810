"""Shared helpers of the benchmarks: figures with spread, fresh servers, process sampling,
server counters and BENCHMARKS.md section writing."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]
import pymongo
import redis

from crawler.embedded import ServerProcess, start_mongo, start_redis

ROOT = Path(__file__).resolve().parent.parent
UA = "tass-crawler-bench/0.1 (+https://example.org)"


# --- figures ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Figure:
    """The median of repeated measurements and their spread."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Figure:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")

    def fmt(self, digits: int = 0) -> str:
        """``median (min–max)``, or the median alone for a single value."""
        if len(self.values) == 1:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.lo:,.{digits}f}–{self.hi:,.{digits}f})"


# --- servers ----------------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_servers(*, mongo: bool = True) -> Iterator[tuple[ServerProcess, ServerProcess | None]]:
    """A Redis server (no persistence) and optionally a MongoDB-protocol server, each on fresh
    data in a temporary folder; both stopped by pid and the folder removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tass-bench-"))
    started: list[ServerProcess] = []
    try:
        red = start_redis(root / "redis", appendonly=False)
        started.append(red)
        mon = None
        if mongo:
            mon = start_mongo(root / "mongo")
            started.append(mon)
        yield red, mon
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def redis_commands(url: str) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``), without INFO."""
    client = redis.Redis.from_url(url)
    try:
        raw = client.info("commandstats")
    finally:
        client.close()
    out: dict[str, int] = {}
    for key, value in raw.items():
        name = str(key).removeprefix("cmdstat_")
        if name in {"info"}:
            continue
        out[name] = int(value["calls"]) if isinstance(value, dict) else 0
    return out


def mongo_counters(url: str) -> dict[str, int]:
    """The server's ``opcounters`` and request count (``serverStatus``)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
    try:
        status = client.admin.command("serverStatus")
    finally:
        client.close()
    out = {k: int(v) for k, v in status.get("opcounters", {}).items()}
    network = status.get("network") or {}
    if "numRequests" in network:
        out["requests"] = int(network["numRequests"])
    return out


def count_documents(url: str, database: str, collection: str) -> int:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
    try:
        return int(client[database][collection].count_documents({}))
    finally:
        client.close()


# --- processes --------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class RssSampler:
    """Samples the summed RSS of a set of processes in a thread; keeps the peak."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.pids: list[int] = []
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, pids: list[int]) -> RssSampler:
        self.pids = list(pids)
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak

    def _run(self) -> None:
        procs: dict[int, psutil.Process] = {}
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                procs[pid] = psutil.Process(pid)
        while not self._stop.is_set():
            total = 0
            for proc in procs.values():
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)


def dump_stacks(pid: int) -> str:
    """The Python stacks of a live process (``py-spy dump``), to say where a hung child was."""
    import subprocess
    import sys

    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        return "(py-spy is not installed: no stacks)"
    try:
        out = subprocess.run(
            [str(binary), "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(py-spy dump failed: {exc})"
    return out.stdout + out.stderr


# --- the report -------------------------------------------------------------------------------
def machine_facts() -> str:
    import aiohttp
    import scrapy
    import scrapy_redis

    mem = psutil.virtual_memory().total / 2**30
    return (
        f"nproc={os.cpu_count()}, {platform.machine()}, {mem:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"Scrapy {scrapy.__version__}, scrapy-redis {scrapy_redis.__version__}, "
        f"redis-py {redis.__version__}, pymongo {pymongo.__version__}, "
        f"aiohttp {aiohttp.__version__}, psutil {psutil.__version__}"
    )


def server_versions(red: ServerProcess, mon: ServerProcess | None) -> str:
    client = redis.Redis.from_url(red.url)
    try:
        info = client.info("server")
    finally:
        client.close()
    name = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version")
    text = f"{name} {version}"
    if mon is not None:
        mclient: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mon.url)
        try:
            build = mclient.admin.command("buildInfo")
        finally:
            mclient.close()
        text += f", SecantusDB (MongoDB wire protocol, reports version {build.get('version')})"
    return text


def now() -> float:
    return time.perf_counter()
