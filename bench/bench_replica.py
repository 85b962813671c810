"""Replica serving rate: article pages per second over loopback, against a 1,500/s target.

Starts ``python -m replica`` with 5,000 articles in a subprocess, warms every article page
once, then fetches article pages with a keep-alive aiohttp client at fixed concurrency, three
runs, and reports the median and spread. A baseline of the same client fetching the tiny
``/robots.txt`` from the same server shows how much of the cost is HTTP itself. Writes the
section ``## Replica serving rate`` of BENCHMARKS.md (other sections are kept).

    .venv/bin/python -m bench.bench_replica [--requests 20000] [--concurrency 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1500.0
UA = "tass-bench/0.1 (+https://example.org/contact)"
SECTION = "## Replica serving rate"


def start_replica(articles: int) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "replica",
            "--port",
            "0",
            "--articles",
            str(articles),
            "--no-hostile",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("replica listening on "):
        proc.kill()
        raise SystemExit(f"replica did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


async def fetch_all(
    session: aiohttp.ClientSession, base: str, paths: list[str], concurrency: int
) -> tuple[float, int]:
    """Fetch every path (bodies read in full); returns (seconds, bytes)."""
    queue = iter(paths)
    total = 0

    async def worker() -> None:
        nonlocal total
        for path in queue:
            async with session.get(base + path) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{path}: HTTP {resp.status}")
                total += len(body)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, total


async def measure(base: str, requests: int, concurrency: int, runs: int) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    headers = {"User-Agent": UA}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.get(base + "/__replica__/truth") as resp:
            truth = json.loads(await resp.read())
        paths = [a["path"] for a in truth["articles"]]
        cold_seconds, _ = await fetch_all(session, base, paths, concurrency)  # renders each once
        sample = [paths[(i * 7919) % len(paths)] for i in range(requests)]
        article_rates = []
        size = 0
        for _ in range(runs):
            seconds, size = await fetch_all(session, base, sample, concurrency)
            article_rates.append(requests / seconds)
        base_rates = []
        for _ in range(runs):
            seconds, _b = await fetch_all(session, base, ["/robots.txt"] * requests, concurrency)
            base_rates.append(requests / seconds)
    return {
        "articles": article_rates,
        "baseline": base_rates,
        "mean_page_bytes": size / requests,
        "cold": len(paths) / cold_seconds,
    }


def render_section(result: dict[str, object], args: argparse.Namespace) -> str:
    rates = result["articles"]
    base = result["baseline"]
    assert isinstance(rates, list) and isinstance(base, list)
    med = statistics.median(rates)
    bmed = statistics.median(base)
    page = result["mean_page_bytes"]
    cold = result["cold"]
    assert isinstance(page, float) and isinstance(cold, float)
    verdict = "meets" if med >= TARGET else "MISSES"
    return (
        f"{SECTION}\n\n"
        f"Article pages served per second by `python -m replica` ({args.articles} articles), "
        f"fetched over loopback by an aiohttp client (keep-alive, {args.concurrency} concurrent "
        f"connections, {args.requests} requests per run, {args.runs} runs, pages pre-warmed).\n\n"
        f"| measure | median | spread (min-max) |\n|---|---|---|\n"
        f"| article pages/s | {med:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} |\n"
        f"| baseline `/robots.txt` req/s | {bmed:,.0f} | {min(base):,.0f}-{max(base):,.0f} |\n\n"
        f"- Target 1,500 pages/s: ratio **{med / TARGET:.2f}x** ({verdict} the target).\n"
        f"- Article pages run at {med / bmed:.2f}x the tiny-response baseline; mean page "
        f"{page / 1024:,.1f} KiB.\n"
        f"- First fetch of every page (rendered on demand, then cached): {cold:,.0f} pages/s "
        "(one pass, not repeated).\n"
        f"- Machine: nproc={os.cpu_count()}, {platform.machine()}, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}; client and server share "
        f"the machine; 1-min load average before the run {args.load:.2f} (other work on the "
        "machine lowers the figures).\n"
        f"- Reproduce: `.venv/bin/python -m bench.bench_replica --requests {args.requests} "
        f"--concurrency {args.concurrency}`\n"
    )


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace (or append) the section ``heading``, keeping every other section as it is."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    replaced = False
    for line in lines:
        if line.startswith("## "):
            if line.strip() == heading:
                skipping = True
                replaced = True
                out.append(section + "\n")
                continue
            skipping = False
        if not skipping:
            out.append(line)
    if not replaced:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append("\n" + section)
    path.write_text("".join(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=5000)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=48)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = p.parse_args()
    args.load = os.getloadavg()[0]
    proc, base = start_replica(args.articles)
    try:
        result = asyncio.run(measure(base, args.requests, args.concurrency, args.runs))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    section = render_section(result, args)
    print(section)
    write_section(args.output, section)


if __name__ == "__main__":
    main()
