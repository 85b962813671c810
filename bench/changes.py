"""Change detection: the per-article state's memory, and what a nightly run costs the site.

1. Bytes per article of the change-detection state (``keys.versions``: 64 bits an article id,
   ``crawler.frontier.versions``) at 10^6 articles, in a fresh Valkey: the first 2,000 records
   written through the real path (``RedisFrontier.flush`` with ``VersionRecord``s, the FLUSH
   script's ``record_version``), the rest with the same ``BITFIELD SET``s pipelined. Two id
   layouts: ids spread as on tass.com (a seeded sample of odd ids up to 2.33 million, ~2.33 id
   steps an article, as the replica and spec §9 have it) and dense ids 1..10^6 (the floor:
   8 bytes). Bytes are ``MEMORY USAGE``.
2. Requests per new article in a nightly run: a replica (``--articles``, hostile pages off) is
   crawled whole (``since=all``) by two workers, advanced one day, and crawled incrementally;
   the site's request counts of that night are divided by the articles it published. The same
   is done with the code before this change (per-feed high-water marks, ``--old-commit``,
   checked out into a temporary git worktree and run from there with the same environment),
   for each sitemap layout in ``--layouts``. Each crawl pair has fresh servers.

::

    python -m bench.changes [--articles 2000] [--layouts default rolling] [--old-commit 77ecb93]

Writes the section ``## Change detection`` of BENCHMARKS.md (other sections are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from bench.bench_replica import write_section
from bench.common import ROOT, UA, fresh_servers
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import RedisFrontier
from crawler.frontier.versions import VersionRecord
from replica.launch import ReplicaProcess

SECTION = "## Change detection"
N = 1_000_000
SPREAD_LAST_ID = 2_330_000
REAL_PATH = 2000
LAYOUTS = {
    "default": [],
    "rolling": ["--sitemap-layout", "rolling"],
    "daily": ["--sitemap-layout", "daily"],
    "shuffle": ["--sitemap-layout", "shuffle"],
}


# --- 1. memory --------------------------------------------------------------------------------
def _ids(layout: str, n: int) -> list[int]:
    if layout == "dense":
        return list(range(1, n + 1))
    return sorted(random.Random(7).sample(range(1, SPREAD_LAST_ID, 2), n))


async def _write(url: str, prefix: str, ids: list[int]) -> None:
    client = AsyncRedis.from_url(url)
    try:
        queue = RedisFrontier(client, FrontierKeys(prefix))
        when = datetime(2026, 10, 7, tzinfo=UTC)
        records = [
            VersionRecord.of(
                i, url=f"https://tass.com/world/{i}", title=f"Title {i}", lead=None,
                body=f"Body {i}", modified_at=when, published_at=when,
                hint={"a": {"t": f"Title {i}", "d": int(when.timestamp())}}, sighting_meta=None,
            )
            for i in ids[:REAL_PATH]
        ]  # fmt: skip
        for start in range(0, len(records), 500):
            await queue.flush([], [], versions=records[start : start + 500])
        key = FrontierKeys(prefix).versions
        async with client.pipeline(transaction=False) as pipe:
            for n, i in enumerate(ids[REAL_PATH:]):
                r = records[n % len(records)]
                pipe.execute_command(
                    "BITFIELD", key, "SET", "u32", i * 64, r.stamp, "SET", "u16", i * 64 + 32,
                    r.feed, "SET", "u15", i * 64 + 48, r.content,
                )  # fmt: skip
                if n % 5000 == 4999:
                    await pipe.execute()
            await pipe.execute()
    finally:
        await client.aclose()


def measure_memory(n: int = N) -> dict[str, float]:
    out: dict[str, float] = {}
    with fresh_servers(mongo=False) as (red, _):
        client = redis.Redis.from_url(red.url)
        try:
            for layout in ("spread", "dense"):
                ids = _ids(layout, n)
                asyncio.run(_write(red.url, layout, ids))
                key = FrontierKeys(layout).versions
                used = int(client.memory_usage(key, samples=0) or 0)
                out[layout] = used / n
                out[f"{layout}_max_id"] = ids[-1]
        finally:
            client.close()
    return out


# --- 2. requests per new article --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Night:
    code: str
    layout: str
    new: int
    edited: int
    total: int
    articles: int
    listing: int
    sitemap: int

    @property
    def per_new(self) -> float:
        return self.total / max(1, self.new)


def _run(cwd: Path, env: dict[str, str], args: list[str], logs: Path, name: str) -> None:
    procs = []
    for i in range(2):
        log = (logs / f"{name}-{i}.log").open("wb")
        argv = [sys.executable, "-m", "scrapy", "crawl", "tass", *args]
        procs.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait(timeout=1800) for p in procs]
    if any(codes):
        tail = (logs / f"{name}-0.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name}: exit codes {codes}\n{tail}")


def night(code: str, cwd: Path, layout: str, articles: int, logs: Path) -> Night:
    start = (date.today() - timedelta(days=6)).isoformat()
    extra = ["--no-hostile", "--start-date", start, *LAYOUTS[layout]]
    with (
        ReplicaProcess(articles=articles, seed=7, extra_args=extra) as replica,
        fresh_servers() as (red, mon),
    ):
        assert mon is not None
        env = {
            **os.environ,
            "PYTHONPATH": str(cwd),
            "TASS_BASE_URL": replica.base_url,
            "REDIS_URL": red.url,
            "MONGO_URI": mon.url,
            "MONGO_DATABASE": "bench",
            "TASS_REDIS_PREFIX": "bench",
            "CRAWL_RATE": "2000",
            "CRAWL_CONCURRENCY": "64",
            "CONCURRENT_REQUESTS": "16",
            "USER_AGENT": UA,
            "LOG_LEVEL": "INFO",
        }
        _run(cwd, env, ["-a", "since=all"], logs, f"{code}-{layout}-full")
        before = {a["id"]: a["revision"] for a in replica.truth()["articles"] if a["reachable"]}
        replica.get_json("/__replica__/advance?days=1", method="POST")
        after = {a["id"]: a["revision"] for a in replica.truth()["articles"] if a["reachable"]}
        replica.get_json("/__replica__/stats/reset", method="POST")
        _run(cwd, env, [], logs, f"{code}-{layout}-night")
        stats: dict[str, Any] = replica.stats()
    kinds = stats["by_kind"]
    return Night(
        code,
        layout,
        new=len(set(after) - set(before)),
        edited=sum(1 for i in before if i in after and after[i] != before[i]),
        total=int(stats["total"]),
        articles=int(kinds.get("article", 0)),
        listing=int(kinds.get("api_list", 0)),
        sitemap=int(kinds.get("sitemap", 0)),
    )


def old_worktree(commit: str, into: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(into), commit],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return into


def render(memory: dict[str, float], nights: list[Night], args: argparse.Namespace) -> str:
    lines = [
        SECTION,
        "",
        f"Written by `python -m bench.changes --articles {args.articles} --layouts "
        f"{' '.join(args.layouts)} --old-commit {args.old_commit}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC (`bench/changes.py`; 1-min load average before "
        f"the run {args.load:.2f}).",
        "",
        f"**State per article** (`versions`: 64 bits an article id, `BITFIELD`) at {N:,} "
        "articles, `MEMORY USAGE`:",
        "",
        "| ids | largest id | bytes per article |",
        "|---|---|---|",
        "| spread as on tass.com (odd, ~2.33 id steps an article) | "
        f"{memory['spread_max_id']:,.0f} | {memory['spread']:.1f} |",
        f"| dense (1..10^6) | {memory['dense_max_id']:,.0f} | {memory['dense']:.1f} |",
        "",
        "The record is per id, so its size follows the largest id, not the article count: at "
        "the site's 2.2 million ids, about 18 MB whatever the number of articles. The "
        "seen-articles bitmap beside it is 1 bit an id.",
        "",
        f"**A nightly run** after one simulated day on a replica of {args.articles} articles "
        "(two workers, `CRAWL_RATE=2000`, default settings otherwise; requests as counted by "
        "the replica: every request at the site, robots.txt, hubs, listing API, feeds and "
        "redirects included):",
        "",
        "| sitemap layout | code | new | edited | requests | per new article | article pages "
        "| listing API | sitemaps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in nights:
        lines.append(
            f"| {n.layout} | {n.code} | {n.new} | {n.edited} | {n.total} | {n.per_new:.2f} | "
            f"{n.articles} | {n.listing} | {n.sitemap} |"
        )
    lines += [
        "",
        f"`per-feed marks` is commit `{args.old_commit}` (the code before this change: a mark per "
        "listing feed and per sitemap file, 12 h overlap, 48 h re-check window), run from a "
        "temporary git worktree with the same servers, replica and environment; `per-article` "
        "is this commit (`TASS_RECHECK_SAMPLE=20`: its article pages include the 20-odd sampled "
        "re-checks).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=2000)
    p.add_argument("--layouts", nargs="+", default=["default", "rolling"], choices=list(LAYOUTS))
    p.add_argument("--old-commit", default="77ecb93")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = p.parse_args()
    args.load = os.getloadavg()[0]
    print("memory ...", flush=True)
    memory = measure_memory()
    nights: list[Night] = []
    tmp = Path(tempfile.mkdtemp(prefix="tass-bench-changes-"))
    logs = tmp / "logs"
    logs.mkdir()
    old = tmp / "old"
    try:
        old_worktree(args.old_commit, old)
        for layout in args.layouts:
            for code, cwd in (("per-article", ROOT), ("per-feed marks", old)):
                print(f"{layout}: {code} ...", flush=True)
                nights.append(night(code, cwd, layout, args.articles, logs))
                print(nights[-1], flush=True)
    finally:
        remove = ["git", "worktree", "remove", "--force", str(old)]
        subprocess.run(remove, cwd=ROOT, capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    section = render(memory, nights, args)
    print(section)
    write_section(args.output, section, SECTION)


if __name__ == "__main__":
    main()
