"""One measured crawl of the replica: the ceiling, the scrapy-redis baseline, or the project.

Each run gets its own Redis and MongoDB servers (fresh data folders); the replica is shared.
Measured:

- articles per second: articles handled over the crawl window, from the first process's
  ``spider_opened`` to the last one's ``spider_closed`` (stats extension, ``bench.spiders``);
  "articles" are documents in ``articles`` for the project and the baseline, article
  responses for the ceiling;
- CPU: user + system seconds of the crawl processes within that window (``os.times`` in the
  process) plus those of the Redis and MongoDB servers over the run (psutil); the replica's
  CPU (the site's, not the crawler's) is kept apart;
- peak memory: the largest summed RSS of the crawl processes, sampled every 0.1 s (psutil);
- Redis: round trips (the project's own counter; for scrapy-redis, commands from
  ``INFO commandstats`` with each MULTI/EXEC pipeline counted once) and commands;
- MongoDB: write commands (``serverStatus().opcounters`` insert + update + delete) and read
  commands (query + getmore: the store's read-back, dedupe's candidate and original look-ups).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    UA,
    RssSampler,
    count_documents,
    cpu_seconds,
    dump_stacks,
    fresh_servers,
    mongo_counters,
    redis_commands,
)
from crawler import settings

CRAWL_TIMEOUT = 1200.0


@dataclass(slots=True)
class CrawlResult:
    """What one crawl measured."""

    name: str
    workers: int
    articles: int
    pages: int
    seconds: float
    crawler_cpu: float
    server_cpu: float
    redis_cpu: float
    """Of ``server_cpu``, the Redis server's (the rest is the MongoDB server's)."""
    replica_cpu: float
    peak_rss: int
    server_peak_rss: int
    redis_round_trips: int
    redis_commands: int
    mongo_writes: int
    mongo_reads: int = 0
    """Read commands the server counted: ``opcounters`` query (one per ``find``) + getmore."""
    load: float = 0.0
    """The machine's 1-minute load average when the crawl ended."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.articles / self.seconds if self.seconds else 0.0

    @property
    def mongo_cpu(self) -> float:
        """Of ``server_cpu``, the MongoDB server's."""
        return self.server_cpu - self.redis_cpu

    def per_article(self, value: float) -> float:
        return value / self.articles if self.articles else float("nan")


def _project_argv(stats_file: Path) -> list[str]:
    # The project's own extensions too: ``-s EXTENSIONS`` replaces the project's setting.
    extensions = json.dumps({**settings.EXTENSIONS, "bench.spiders.StatsDumpExtension": 0})
    return [
        sys.executable, "-m", "scrapy", "crawl", "tass", "-a", "since=all",
        "-s", f"EXTENSIONS={extensions}",
        "-s", f"BENCH_STATS_FILE={stats_file}",
    ]  # fmt: skip


def _comparison_argv(
    kind: str, urls: Path, stats_file: Path, concurrency: int, env: dict[str, str]
) -> list[str]:
    return [
        sys.executable, "-m", "bench.spiders", kind,
        "--urls", str(urls), "--stats", str(stats_file),
        "--concurrency", str(concurrency),
        "-s", f"REDIS_URL={env['REDIS_URL']}",
        "-s", f"MONGO_URI={env['MONGO_URI']}",
        "-s", f"MONGO_DATABASE={env['MONGO_DATABASE']}",
    ]  # fmt: skip


def run_crawl(
    kind: str,
    *,
    replica_url: str,
    replica_pid: int,
    urls: Path,
    workers: int = 1,
    concurrency: int = 16,
    env_extra: dict[str, str] | None = None,
    wrap: list[str] | None = None,
) -> CrawlResult:
    """Run one crawl of ``kind`` (``ceiling``, ``baseline`` or ``project``) and measure it.

    ``wrap`` prefixes the first worker's command (a profiler)."""
    use_mongo = kind != "ceiling"
    with (
        fresh_servers(mongo=use_mongo) as (red, mon),
        tempfile.TemporaryDirectory(prefix="tass-bench-run-") as tmp,
    ):
        database = "bench"
        env = {
            **os.environ,
            "TASS_BASE_URL": replica_url,
            "REDIS_URL": red.url,
            "MONGO_URI": mon.url if mon else "",
            "MONGO_DATABASE": database,
            "TASS_REDIS_PREFIX": "bench",
            "CRAWL_RATE": "100000",
            "CRAWL_CONCURRENCY": str(64 * workers),
            "CONCURRENT_REQUESTS": str(concurrency),
            "USER_AGENT": UA,
            "LOG_LEVEL": "INFO",
            **(env_extra or {}),
        }
        servers = [red.pid] + ([mon.pid] if mon else [])
        server_cpu0 = sum(cpu_seconds(pid) for pid in servers)
        redis_cpu0 = cpu_seconds(red.pid)
        replica_cpu0 = cpu_seconds(replica_pid)
        cmds0 = redis_commands(red.url)
        mongo0 = mongo_counters(mon.url) if mon else {}
        stats_files = [Path(tmp) / f"stats-{i}.json" for i in range(workers)]
        procs: list[subprocess.Popen[bytes]] = []
        logs = []
        for i, stats_file in enumerate(stats_files):
            if kind == "project":
                argv = _project_argv(stats_file)
            else:
                argv = _comparison_argv(kind, urls, stats_file, concurrency, env)
            if wrap and i == 0:
                argv = [*wrap, *argv]
            log = (Path(tmp) / f"log-{i}.txt").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        sampler = RssSampler().start([p.pid for p in procs])
        server_sampler = RssSampler(interval=0.5).start(servers)
        deadline = time.monotonic() + CRAWL_TIMEOUT
        try:
            try:
                codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
            except subprocess.TimeoutExpired as exc:
                stacks = "\n".join(dump_stacks(p.pid) for p in procs if p.poll() is None)
                hung = f"{kind} crawl still ran after {CRAWL_TIMEOUT:.0f} s"
                raise RuntimeError(f"{hung}:\n{stacks}") from exc
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()
            peak = sampler.stop()
            server_peak = server_sampler.stop()
        if any(codes) or not all(f.exists() for f in stats_files):
            tail = (Path(tmp) / "log-0.txt").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{kind} crawl failed (exit codes {codes}):\n{tail}")
        redis_cpu = cpu_seconds(red.pid) - redis_cpu0
        server_cpu = sum(cpu_seconds(pid) for pid in servers) - server_cpu0
        replica_cpu = cpu_seconds(replica_pid) - replica_cpu0
        cmds1 = redis_commands(red.url)
        mongo1 = mongo_counters(mon.url) if mon else {}
        dumps = [json.loads(f.read_text()) for f in stats_files]
        opened = min(d["opened_at"] for d in dumps)
        closed = max(d["closed_at"] for d in dumps)
        stats = [d["stats"] for d in dumps]

        def total(key: str) -> int:
            return sum(int(s.get(key, 0) or 0) for s in stats)

        pages = total("response_received_count")
        commands = {k: v - cmds0.get(k, 0) for k, v in cmds1.items() if v - cmds0.get(k, 0)}
        n_commands = sum(commands.values())
        if kind == "project":
            round_trips = total("tass/frontier/redis_round_trips")
        else:
            # scrapy-redis pops with MULTI, ZRANGE, ZREMRANGEBYRANK, EXEC in one round trip.
            round_trips = n_commands - 3 * commands.get("exec", 0)
        writes = sum(mongo1.get(k, 0) - mongo0.get(k, 0) for k in ("insert", "update", "delete"))
        reads = sum(mongo1.get(k, 0) - mongo0.get(k, 0) for k in ("query", "getmore"))
        if kind == "ceiling":
            articles = pages
        else:
            assert mon is not None
            articles = count_documents(mon.url, database, "articles")
        extra: dict[str, Any] = {
            "redis_command_breakdown": commands,
            "mongo_counters": {k: mongo1.get(k, 0) - mongo0.get(k, 0) for k in mongo1},
            "requests": total("downloader/request_count"),
            "store_batches": total("tass/store/batches"),
            "items": total("item_scraped_count"),
            "max_rss_per_process": [d["max_rss"] for d in dumps],
            "tass_stats": {  # the project's counters, summed over workers
                k: total(k)
                for k in sorted({k for s in stats for k in s})
                if k.startswith("tass/")
                and all(isinstance(s.get(k, 0), int | float) for s in stats)
            },
        }
        return CrawlResult(
            name=kind,
            workers=workers,
            articles=articles,
            pages=pages,
            seconds=closed - opened,
            crawler_cpu=sum(float(d["cpu_seconds"]) for d in dumps),
            server_cpu=server_cpu,
            redis_cpu=redis_cpu,
            replica_cpu=replica_cpu,
            peak_rss=peak,
            server_peak_rss=server_peak,
            redis_round_trips=round_trips,
            redis_commands=n_commands,
            mongo_writes=writes,
            mongo_reads=reads,
            load=os.getloadavg()[0],
            extra=extra,
        )
