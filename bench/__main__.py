"""``make bench``: every benchmark, one after another, written to BENCHMARKS.md.

1. The replica's serving rate (``bench.bench_replica``, its own replica process).
2. Crawl throughput against one replica (``--articles``, hostile pages off), each repeated
   ``--repeat`` times, interleaved (ceiling, baseline, project ×1, ×2, ×4, then again) so that
   drift in the machine's load spreads over all of them: the bare Scrapy ceiling, the
   scrapy-redis baseline (``bench.spiders``), and the project's ``tass`` spider with 1, 2 and 4
   workers. Each crawl has its own Redis and MongoDB servers (``bench.crawl``).
3. When a throughput or CPU target is missed: one more 1-worker project crawl under py-spy,
   summarised (``bench.profile``).
4. Frontier memory at 10^5 and 10^6 URLs, ours beside scrapy-redis (``bench.frontier_memory``).
5. The raw archive's bytes per article, reparse's rate beside the crawl's parse cost, and
   export rows/s with peak memory at 10^4 and 10^5 articles (``bench.archive``).

::

    python -m bench [--articles 5000] [--repeat 3] [--quick] [--output BENCHMARKS.md]

``--quick`` is a smoke run of the harness (500 articles, 1 repetition, 10^4/10^5 URLs, short
replica run); it writes to ``--output`` only when one is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import archive, bench_replica
from bench.common import ROOT, Figure, fresh_servers, machine_facts, server_versions
from bench.crawl import CrawlResult, run_crawl
from bench.frontier_memory import MemoryResult
from bench.frontier_memory import measure as measure_memory
from bench.profile import Profile, py_spy, summarise
from replica.launch import ReplicaProcess

CONFIGS: list[tuple[str, str, int]] = [
    ("ceiling", "Ceiling: bare Scrapy, responses ignored", 1),
    ("baseline", "Baseline: scrapy-redis defaults + selectors + `insert_one`", 1),
    ("project", "This project, 1 worker", 1),
    ("project", "This project, 2 workers", 2),
    ("project", "This project, 4 workers", 4),
]
MIB = 2**20


@dataclass
class Row:
    label: str
    runs: list[CrawlResult]

    def fig(self, attr: str) -> Figure:
        return Figure.of(_value(r, attr) for r in self.runs)


def _value(r: CrawlResult, attr: str) -> float:
    if attr == "rate":
        return r.rate
    if attr == "cpu_ms":
        return 1000 * r.per_article(r.crawler_cpu + r.server_cpu)
    if attr == "worker_cpu_ms":
        return 1000 * r.per_article(r.crawler_cpu)
    if attr == "redis_cpu_ms":
        return 1000 * r.per_article(r.redis_cpu)
    if attr == "mongo_cpu_ms":
        return 1000 * r.per_article(r.mongo_cpu)
    if attr == "replica_cpu_ms":
        return 1000 * r.per_article(r.replica_cpu)
    if attr == "rss":
        return r.peak_rss / MIB
    if attr == "server_rss":
        return r.server_peak_rss / MIB
    if attr == "round_trips":
        return r.per_article(r.redis_round_trips)
    if attr == "commands":
        return r.per_article(r.redis_commands)
    if attr == "writes":
        return r.per_article(r.mongo_writes)
    if attr == "reads":
        return r.per_article(r.mongo_reads)
    value = getattr(r, attr)
    assert isinstance(value, int | float)
    return float(value)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the parts --------------------------------------------------------------------------------
def run_replica_bench(args: argparse.Namespace) -> str:
    ns = argparse.Namespace(
        articles=args.articles,
        requests=2000 if args.quick else 20000,
        concurrency=48,
        runs=1 if args.quick else 3,
        load=os.getloadavg()[0],
    )
    proc, base = bench_replica.start_replica(ns.articles)
    try:
        result = asyncio.run(bench_replica.measure(base, ns.requests, ns.concurrency, ns.runs))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return bench_replica.render_section(result, ns)


def run_crawls(args: argparse.Namespace, replica: ReplicaProcess, urls: Path) -> dict[str, Row]:
    assert replica.proc is not None
    rows = {label: Row(label, []) for _, label, _ in CONFIGS}
    _log("warm-up: the ceiling crawl once (the replica renders each page on first request)")
    run_crawl("ceiling", replica_url=replica.base_url, replica_pid=replica.proc.pid, urls=urls)
    for rep in range(args.repeat):
        for kind, label, workers in CONFIGS:
            result = run_crawl(
                kind,
                replica_url=replica.base_url,
                replica_pid=replica.proc.pid,
                urls=urls,
                workers=workers,
            )
            rows[label].runs.append(result)
            _log(
                f"run {rep + 1}/{args.repeat} {label}: {result.articles} articles in "
                f"{result.seconds:.1f} s = {result.rate:.1f}/s, "
                f"{_value(result, 'cpu_ms'):.2f} CPU ms/article"
            )
    return rows


def run_profile(replica: ReplicaProcess, urls: Path, out: Path) -> Profile | str:
    binary = py_spy()
    if binary is None:
        return "py-spy is not installed (`.venv/bin/pip install py-spy`): no profile taken."
    assert replica.proc is not None
    wrap = [binary, "record", "--gil", "--format", "raw", "--rate", "100", "-o", str(out), "--"]
    _log("profile: one more 1-worker project crawl under py-spy")
    try:
        run_crawl(
            "project",
            replica_url=replica.base_url,
            replica_pid=replica.proc.pid,
            urls=urls,
            wrap=wrap,
        )
    except RuntimeError as exc:
        return f"py-spy run failed: {str(exc)[-500:]}"
    if not out.exists():
        return "py-spy wrote no profile (ptrace not permitted?)."
    return summarise(out)


# --- rendering --------------------------------------------------------------------------------
def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def render_crawls(rows: dict[str, Row], args: argparse.Namespace) -> str:
    ceiling = rows[CONFIGS[0][1]].fig("rate").median
    baseline = rows[CONFIGS[1][1]].fig("rate").median
    lines = [
        "## Crawl throughput",
        "",
        f"One replica (`python -m replica --articles {args.articles} --seed 7 --no-hostile`) "
        f"serves every crawl; each crawl has its own fresh Valkey and SecantusDB servers. "
        f"Every figure is the median of {args.repeat} runs with the spread (min–max) in "
        "brackets; runs were interleaved (ceiling, baseline, 1, 2 and 4 workers, then again), "
        "after one unrecorded warm-up crawl.",
        "",
        "| crawler | articles | articles/s | × ceiling | × baseline | CPU ms/article "
        "| of which crawl processes | of which Redis | of which MongoDB | peak RSS MiB (crawlers) "
        "| Redis+Mongo peak RSS MiB | Redis round trips/article | Redis commands/article "
        "| MongoDB writes/article | MongoDB reads/article | pages fetched "
        "| site CPU ms/article |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, label, _ in CONFIGS:
        row = rows[label]
        rate = row.fig("rate")
        lines.append(
            f"| {label} | {row.fig('articles').fmt()} | {rate.fmt(1)} "
            f"| {_ratio(rate.median, ceiling):.2f} | {_ratio(rate.median, baseline):.2f} "
            f"| {row.fig('cpu_ms').fmt(2)} | {row.fig('worker_cpu_ms').fmt(2)} "
            f"| {row.fig('redis_cpu_ms').fmt(2)} | {row.fig('mongo_cpu_ms').fmt(2)} "
            f"| {row.fig('rss').fmt()} | {row.fig('server_rss').fmt()} "
            f"| {row.fig('round_trips').fmt(2)} | {row.fig('commands').fmt(2)} "
            f"| {row.fig('writes').fmt(3)} | {row.fig('reads').fmt(3)} "
            f"| {row.fig('pages').fmt()} "
            f"| {row.fig('replica_cpu_ms').fmt(2)} |"
        )
    lines += [
        "",
        "What each column counts:",
        "",
        "- **articles**: documents in `articles` after the crawl (the ceiling: article pages "
        "fetched). The ceiling and the baseline fetch the truth's article URLs (a user's "
        "spider starts from a URL list); the project discovers them itself through section "
        "pages, the listing API, RSS, sitemaps and links, so it also fetches hub pages "
        "(*pages fetched*) and finds only the linked articles (the replica leaves ~0.3% "
        "unlinked).",
        "- **articles/s**: articles over the crawl window, from the first process's "
        "`spider_opened` to the last one's `spider_closed` (so process start-up is out; the "
        "project's end of run is in: one heartbeat, 0.5 s at most, for a worker alone; the 2 s "
        "idle grace with other workers). All crawlers fetch 16 requests at once "
        "per process (`CONCURRENT_REQUESTS`, and per domain); the project's cluster budget is "
        "set out of the way (`CRAWL_RATE=100000`, `CRAWL_CONCURRENCY=64` per worker).",
        "- **CPU ms/article**: user + system CPU of the crawl processes within the window "
        "(`os.times()` in each process, all threads) plus the Redis and MongoDB servers "
        "over the run (psutil), then split into its three parts. SecantusDB is a MongoDB "
        "server written in Python (its query matcher, and its index layer over WiredTiger, "
        "run in Python), so its CPU per command is far above a `mongod`'s and weighs on "
        "whoever sends more reads and writes: compare the MongoDB column between crawlers, "
        "not with a production server. The replica's CPU is the site's, shown apart "
        "(*site CPU*).",
        "- **peak RSS**: the largest summed resident memory of the crawl processes, sampled "
        "every 0.1 s with psutil.",
        "- **Redis round trips**: the project counts its own (each script call or pipeline is "
        "one; `tass/frontier/redis_round_trips`, summed over workers). scrapy-redis has no "
        "counter: its figure is the commands the server executed (`INFO commandstats` "
        "deltas), with each pop's MULTI/ZRANGE/ZREMRANGEBYRANK/EXEC counted once (it is one "
        "pipeline); every other scrapy-redis call is one command per round trip. "
        "**Redis commands** counts every command the server executed, for the project "
        "including those inside its Lua scripts.",
        "- **MongoDB writes**: write commands the server counted (`serverStatus().opcounters` "
        "insert + update + delete; a bulk write of N documents counts once per kind of "
        "operation in it). **MongoDB reads**: read commands the server counted (query + "
        "getmore: the store's read-back of a batch's stored versions, dedupe's candidate and "
        "original look-ups).",
    ]
    return "\n".join(lines) + "\n"


def render_memory(results: list[MemoryResult]) -> str:
    lines = [
        "## Frontier memory",
        "",
        "Bytes Redis holds per article URL, after N synthetic article requests "
        "(`https://tass.com/<section>/<odd id>`) went through the real enqueue paths "
        "(`bench/frontier_memory.py` says how). *Seen* is the dedupe structure (ours: the "
        "`seen:articles` bitmap, one bit per possible id, so its size follows the largest id "
        "(~2.2 million on the site today; ids spread to 3.2 million for 10^6), not the "
        "count; scrapy-redis: a set of 40-hex SHA1 fingerprints). *Queued* is the request "
        "queue (ours: a plain article request is a bit per id in `pending:plain:ids:<priority>` "
        "and a 4-bit section code per id in `pending:plain:sections`, so its size too follows "
        "the largest id; every other request is compact JSON in the `pending` sorted set; "
        "scrapy-redis: pickled `Request.to_dict` in a sorted set). *Member bytes* is the JSON "
        "a request is leased as. `MEMORY USAGE key SAMPLES 0` summed over the queue's keys, "
        "divided by N; measured once (it is deterministic).",
        "",
        "| implementation | URLs | bytes/seen URL | bytes/queued request | member bytes "
        "| `used_memory` growth/URL |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.implementation} | {r.n:,} | {r.per_seen:.2f} | {r.per_queued:.1f} "
            f"| {r.member_bytes:.1f} | {r.used_memory_delta / r.n:.1f} |"
        )
    return "\n".join(lines) + "\n"


def render_targets(
    rows: dict[str, Row],
    memory: list[MemoryResult],
    replica_rate: float | None,
    reparse_rate: float | None,
) -> tuple[str, list[str]]:
    """Issue 16's targets, from the medians of this invocation; and the names of those missed."""
    ceiling, baseline, one = (rows[label] for _, label, _ in CONFIGS[:3])
    projects = [rows[label] for kind, label, _ in CONFIGS if kind == "project"]
    rate1 = one.fig("rate").median
    checks: list[tuple[str, str, bool]] = []
    r = _ratio(rate1, baseline.fig("rate").median)
    checks.append(("1 worker ≥ 1.5 × baseline articles/s", f"{r:.2f} ×", r >= 1.5))
    r = _ratio(rate1, ceiling.fig("rate").median)
    checks.append(("1 worker ≥ 0.6 × ceiling articles/s", f"{r:.2f} ×", r >= 0.6))
    r = _ratio(one.fig("cpu_ms").median, baseline.fig("cpu_ms").median)
    checks.append(
        ("1 worker CPU/article (worker + Redis + MongoDB) ≤ 1.0 × baseline's", f"{r:.2f} ×", r <= 1)
    )
    r = _ratio(one.fig("worker_cpu_ms").median, baseline.fig("worker_cpu_ms").median)
    checks.append(
        ("1 worker process CPU/article ≤ 0.5 × baseline spider process's", f"{r:.2f} ×", r <= 0.5)
    )
    for row in projects:
        who = row.label.split(", ")[1]
        trips = row.fig("round_trips")
        checks.append((f"≤ 1 Redis round trip/article ({who})", trips.fmt(2), trips.hi <= 1))
    for row in projects:
        who = row.label.split(", ")[1]
        writes, reads = row.fig("writes"), row.fig("reads")
        checks.append(
            (f"≤ 0.05 MongoDB writes/article ({who})", writes.fmt(3), writes.median <= 0.05)
        )
        checks.append((f"≤ 0.1 MongoDB reads/article ({who})", reads.fmt(3), reads.median <= 0.1))
    for m in memory:
        if m.implementation == "ours":
            checks.append(
                (f"≤ 16 bytes/seen URL at {m.n:,}", f"{m.per_seen:.2f}", m.per_seen <= 16)
            )
    for m in memory:
        if m.implementation == "ours" and m.n == max(x.n for x in memory):
            checks.append(
                (
                    f"≤ 64 bytes/queued article request at {m.n:,}",
                    f"{m.per_queued:.1f}",
                    m.per_queued <= 64,
                )
            )
    if reparse_rate is not None:
        r = _ratio(reparse_rate, rate1)
        checks.append(
            (
                "reparse (1 worker process) ≥ 4 × the 1-worker crawl's articles/s",
                f"{r:.2f} × ({reparse_rate:,.0f}/s)",
                r >= 4,
            )
        )
    if replica_rate is not None:
        checks.append(
            (
                "replica serves ≥ 1,500 article pages/s",
                f"{replica_rate:,.0f}/s",
                replica_rate >= 1500,
            )
        )
    lines = [
        "## Targets",
        "",
        "Ratios of medians measured in this invocation.",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
    ]
    missed = []
    for name, value, ok in checks:
        lines.append(f"| {name} | {value} | {'met' if ok else '**missed**'} |")
        if not ok:
            missed.append(name)
    return "\n".join(lines) + "\n", missed


def render_profile(profile: Profile | str | None, missed: list[str]) -> str:
    lines = ["## Profile of the project's worker", ""]
    if profile is None:
        lines.append("No throughput or CPU target was missed: no profile taken.")
        return "\n".join(lines) + "\n"
    if isinstance(profile, str):
        lines.append(profile)
        return "\n".join(lines) + "\n"
    lines += [
        f"Missed: {'; '.join(missed)}. One more 1-worker crawl of the same replica ran under "
        f"`py-spy record --gil --format raw --rate 100` (samples of the thread holding "
        f"the GIL only, i.e. Python at work; {profile.samples:,} "
        "samples). Share of samples:",
        "",
        "Where the CPU was (leaf frame):",
        "",
        "| function | self |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile.self_share]
    lines += ["", "Hottest source lines (leaf frame):", "", "| line | self |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile.hot_lines]
    lines += ["", "The project's own code, including what it calls:", ""]
    lines += ["| function | total |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile.project_share]
    lines += ["", "Including callees (the frames most often on the stack):", ""]
    lines += ["| function | total |", "|---|---|"]
    shown = 0
    for name, share in profile.total_share:
        if name.startswith(("<module>", "run (", "_run", "run_forever", "start (", "execute (")):
            continue
        if "(scrapy/cmdline.py)" in name or "(scrapy/crawler.py)" in name:
            continue
        lines.append(f"| `{name}` | {share:.1%} |")
        shown += 1
        if shown >= 20:
            break
    return "\n".join(lines) + "\n"


def parse_sections(text: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    heading, buf = "", list[str]()
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            if heading:
                sections[heading] = "".join(buf)
            heading, buf = line.strip(), []
        buf.append(line)
    if heading:
        sections[heading] = "".join(buf)
    return sections


def _replica_rate(section: str) -> float | None:
    for line in section.splitlines():
        if line.startswith("| article pages/s |"):
            return float(line.split("|")[2].replace(",", ""))
    return None


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run of the harness")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--skip-replica", action="store_true", help="keep the replica section")
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    parser.add_argument(
        "--export-sizes",
        default=None,
        help="archive sizes the export is measured at, comma-separated (default 10000,100000; "
        "'' for none: the 10^5 export takes tens of minutes on a loaded machine)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        if "--articles" not in (argv or sys.argv):
            args.articles = 500
        if "--repeat" not in (argv or sys.argv):
            args.repeat = 1
    output: Path | None = args.output or (None if args.quick else ROOT / "BENCHMARKS.md")
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    started = time.monotonic()
    commit = _commit()
    load_before = os.getloadavg()

    sections: dict[str, str] = {}
    if output is not None and output.exists():
        sections = parse_sections(output.read_text())
    if not args.skip_replica:
        _log("replica serving rate")
        sections["## Replica serving rate"] = run_replica_bench(args)

    replica = ReplicaProcess(articles=args.articles, seed=7, extra_args=["--no-hostile"])
    replica.start()
    profile: Profile | str | None = None
    with tempfile.TemporaryDirectory(prefix="tass-bench-") as tmp:
        try:
            urls = Path(tmp) / "urls.txt"
            truth = replica.truth()
            urls.write_text("".join(f"{replica.base_url}{a['path']}\n" for a in truth["articles"]))
            rows = run_crawls(args, replica, urls)
            _log("frontier memory")
            memory = measure_memory(sizes)
            replica_rate = _replica_rate(sections.get("## Replica serving rate", ""))
            _, missed = render_targets(rows, memory, replica_rate, None)
            perf_missed = [m for m in missed if "×" in m or "articles/s" in m]
            if args.profile == "always" or (args.profile == "auto" and perf_missed):
                profile = run_profile(replica, urls, Path(tmp) / "profile.txt")
        finally:
            replica.stop()
    _log("raw archive, reparse and export")
    export_sizes = [2000] if args.quick else [10_000, 100_000]
    if args.export_sizes is not None:
        export_sizes = [int(size) for size in args.export_sizes.split(",") if size.strip()]
    sections[archive.HEADING], archived = archive.measure(
        500 if args.quick else 2000, export_sizes, repeat=args.repeat
    )
    reparse_rate = next((rate for workers, rate, _ in archived.reparse if workers == 1), None)
    targets, missed = render_targets(rows, memory, replica_rate, reparse_rate)
    loads = sorted(r.load for row in rows.values() for r in row.runs)
    with fresh_servers() as (red, mon):
        versions = server_versions(red, mon)

    elapsed = time.monotonic() - started
    command = "make bench" if not args.quick else "python -m bench --quick"
    custom = args.articles != 5000 or args.repeat != 3 or args.export_sizes is not None
    if not args.quick and custom:
        extra = f" --export-sizes '{args.export_sizes}'" if args.export_sizes is not None else ""
        command = f'make bench ARGS="--articles {args.articles} --repeat {args.repeat}{extra}"'
    head = (
        "# Benchmarks\n\n"
        f"Written by `{command}` (`python -m bench`, code in `bench/`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} minutes. These numbers "
        "are for people: nothing here is a test.\n\n"
        f"- Code: commit `{commit}` (when the run began).\n"
        f"- Machine: {machine_facts()}.\n"
        f"- Servers: {versions}; each started fresh for each crawl, no persistence for Redis.\n"
        f"- Load average before the run: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} "
        f"(5 min); at the end of each measured crawl (1 min): median {loads[len(loads) // 2]:.2f}, "
        f"{loads[0]:.2f}–{loads[-1]:.2f}. The crawler, the servers and the replica share the "
        "machine's cores, and other work on it (on this machine: other builds and test "
        "suites) lowers the figures: same-run ratios and CPU per article are the figures to "
        "compare, not wall-clock rates across runs.\n"
        f"- Reproduce: `{command}`; the parts alone: `python -m bench.bench_replica`, "
        "`python -m bench.frontier_memory`, `python -m bench.archive`.\n"
    )
    ordered = {
        "## Targets": targets,
        "## Crawl throughput": render_crawls(rows, args),
        "## Profile of the project's worker": render_profile(profile, missed),
        "## Frontier memory": render_memory(memory),
    }
    for heading, text in sections.items():
        if heading not in ordered:
            ordered[heading] = text
    document = head + "\n" + "\n".join(t.rstrip("\n") + "\n" for t in ordered.values())
    print(document)
    if output is not None:
        output.write_text(document)
        _log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
