"""The raw archive, ``scrapy reparse`` and ``scrapy export``, measured; one BENCHMARKS.md section.

1. *Archive bytes per article*: the project crawls a replica (``--articles``, one worker,
   fresh servers); the ``pages`` documents it wrote are measured (raw body, stored body, the
   whole BSON document), and the same pages are compressed other ways for comparison: gzip -6,
   zstd at levels 3 (ours), 9 and 19, and zstd 3 with a dictionary trained on the other half of
   the pages (what a shared dictionary would buy; not used: it would have to be kept, versioned
   and trained on pages the crawl has not fetched yet).
2. *Reparse*: ``scrapy reparse`` of that crawl (``--again`` each time) with 1 and 2 worker
   processes, ``--repeat`` jobs each, interleaved: medians of articles/s over the job (Redis's
   clock) and of CPU ms/article of its processes;
   beside it the crawl's own parse cost on the same pages in this process (the article page
   object alone, then the spider's callback, which also builds the links), and the crawl's
   CPU ms/article as a whole.
3. *Export*: 10^4 and 10^5 articles (the crawled ones copied under new ids until there are
   that many, with their pages) exported in each format to a file: rows/s and the export
   process's peak RSS (``wait4``'s ``ru_maxrss``), so that constant memory shows as the same
   peak at both sizes.

::

    python -m bench.archive [--articles 2000] [--export-sizes 10000,100000] [--repeat 3]
                            [--warc-max-articles N] [--output FILE]

It rewrites only its own section of ``--output`` (default ``BENCHMARKS.md``); ``python -m bench``
runs it too.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
from backports import zstd

from bench.common import ROOT, dump_stacks, fresh_servers
from crawler.archive import page_of, response_of
from crawler.urls import SiteUrls
from replica.launch import ReplicaProcess

HEADING = "## Raw archive, reparse and export"
RUN_TIMEOUT = 600.0
FORMATS = ("jsonl", "csv", "parquet", "warc")
DATABASE = "bench_archive"
EXPORT_DATABASE = "bench_export"


def _log(message: str) -> None:
    print(f"[bench.archive {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Results:
    articles: int = 0
    crawl_seconds: float = 0.0
    crawl_cpu_ms: float = 0.0
    raw: float = 0.0
    stored: float = 0.0
    document: float = 0.0
    codecs: list[tuple[str, float, float, float]] = field(default_factory=list)
    parse_ms: float = 0.0
    callback_ms: float = 0.0
    reparse: list[tuple[int, float, float]] = field(default_factory=list)
    """(workers, median articles/s, median CPU ms/article)."""
    reparse_spread: dict[int, tuple[float, float]] = field(default_factory=dict)
    """Workers → the slowest and fastest job's articles/s."""
    reparse_repeat: int = 0
    exports: list[tuple[str, int, float, float, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Measurements left out of this run, and why."""


def _env(red: str, mon: str, base: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TASS_BASE_URL": base,
        "REDIS_URL": red,
        "MONGO_URI": mon,
        "MONGO_DATABASE": DATABASE,
        "TASS_REDIS_PREFIX": "bench",
        "CRAWL_RATE": "100000",
        "CRAWL_CONCURRENCY": "64",
        "CONCURRENT_REQUESTS": "16",
        "TASS_IDLE_GRACE": "1.0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, Any]:
    """Run a child to its end: (wall seconds, its rusage: CPU and peak RSS)."""
    import tempfile

    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        while True:  # os.wait4 (for the child's rusage) has no timeout: poll it
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > RUN_TIMEOUT:
                stacks = dump_stacks(proc.pid)
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"{' '.join(argv)} still ran after {RUN_TIMEOUT:.0f} s:\n{stacks}"
                )
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            text = log.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {text[-2000:]}")
    return seconds, usage


def measure_archive(db: Any, results: Results) -> list[dict[str, Any]]:
    import bson

    pages = list(db.pages.find())
    results.raw = statistics.mean(p["body_size"] for p in pages)
    results.stored = statistics.mean(len(p["body"]) for p in pages)
    results.document = statistics.mean(len(bson.encode(p)) for p in pages)
    bodies = [page_of(p).body for p in pages]
    train, test = bodies[::2], bodies[1::2]
    dictionary = zstd.train_dict(train, 64 * 1024)

    def codec(name: str, pack: Any, unpack: Any) -> None:
        started = time.process_time()
        packed = [pack(b) for b in test]
        middle = time.process_time()
        for blob in packed:
            unpack(blob)
        ended = time.process_time()
        results.codecs.append(
            (
                name,
                statistics.mean(map(len, packed)),
                1000 * (middle - started) / len(test),
                1000 * (ended - middle) / len(test),
            )
        )

    codec("gzip -6", lambda b: gzip.compress(b, 6), gzip.decompress)
    for level in (3, 9, 19):
        label = f"zstd {level}" + (" (the archive's)" if level == 3 else "")
        codec(label, lambda b, lv=level: zstd.compress(b, level=lv), zstd.decompress)
    codec(
        "zstd 3 + 64 KiB dictionary",
        lambda b: zstd.compress(b, level=3, zstd_dict=dictionary),
        lambda b: zstd.decompress(b, zstd_dict=dictionary),
    )
    return pages


def measure_parse(pages: list[dict[str, Any]], base: str, results: Results) -> None:
    from scrapy.utils.test import get_crawler

    from crawler.pages import ArticlePage
    from crawler.spiders.tass import TassSpider

    urls = SiteUrls(base)
    responses = [response_of(page_of(p)) for p in pages]
    started = time.process_time()
    for response in responses:
        ArticlePage(response.url, response.text, urls).to_item()
    results.parse_ms = 1000 * (time.process_time() - started) / len(responses)
    crawler = get_crawler(TassSpider, {"TASS_BASE_URL": base})
    spider = TassSpider.from_crawler(crawler)
    started = time.process_time()
    for response in responses:
        list(spider.parse_article(response))
    results.callback_ms = 1000 * (time.process_time() - started) / len(responses)


def measure_reparse(env: dict[str, str], db: Any, results: Results, repeat: int) -> None:
    """``repeat`` jobs with each number of workers, interleaved; the medians (one job's rate
    moved by a fifth between runs on a busy machine)."""
    results.reparse_repeat = repeat
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(repeat):
        for workers, measured in runs.items():
            seconds, usage = _run(
                [sys.executable, "-m", "scrapy", "reparse", "--again", "--workers", str(workers)],
                env,
            )
            state = _job_times(env["REDIS_URL"])
            took = (state[1] - state[0]) / 1000
            cpu = usage.ru_utime + usage.ru_stime  # wait4 counts the workers it waited for too
            _log(f"reparse x{workers}: {results.articles} in {took:.1f} s (wall {seconds:.1f} s)")
            measured.append((results.articles / took, 1000 * cpu / results.articles))
    for workers, measured in runs.items():
        rates = [rate for rate, _ in measured]
        results.reparse.append(
            (workers, statistics.median(rates), statistics.median(c for _, c in measured))
        )
        results.reparse_spread[workers] = (min(rates), max(rates))


def _job_times(url: str) -> tuple[int, int]:
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        key = next(iter(client.scan_iter(match="bench:reparse:*:state")))
        state = client.hgetall(key)
    finally:
        client.close()
    return int(state["started_ms"]), int(state["finished_ms"])


def grow(source: Any, target: Any, size: int) -> None:
    """Copy the crawled articles (and their pages) of ``source`` into ``target`` under new ids
    until it holds ``size``. ``target`` has no secondary index: the export reads by ``_id``
    only, and SecantusDB's indexes slow down badly on the copies' identical keys."""
    docs = list(source.articles.find())
    pages = {p["article_id"]: p for p in source.pages.find()}
    count = target.articles.count_documents({})
    next_id = 1 + 2 * count
    while count < size:
        batch_docs, batch_pages = [], []
        for doc in docs[: min(len(docs), size - count, 1000)]:
            batch_docs.append({**doc, "_id": next_id, "revision": 1})
            page = pages.get(doc["_id"])
            if page is not None:
                copy = {k: v for k, v in page.items() if k != "_id"}
                batch_pages.append({**copy, "article_id": next_id, "revision": 1})
            next_id += 2
        target.articles.insert_many(batch_docs, ordered=False)
        if batch_pages:
            target.pages.insert_many(batch_pages, ordered=False)
        count += len(batch_docs)


def measure_exports(
    env: dict[str, str], db: Any, sizes: list[int], results: Results, warc_max: int = 0
) -> None:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"tass-bench-export-{os.getpid()}"
    target = db.client[EXPORT_DATABASE]
    env = {**env, "MONGO_DATABASE": EXPORT_DATABASE}
    for size in sizes:
        _log(f"export: growing the archive to {size:,} articles")
        grow(db, target, size)
        for fmt in FORMATS:
            if fmt == "warc" and 0 < warc_max < size:
                results.skipped.append(
                    f"WARC at {size:,} articles (`--warc-max-articles {warc_max}`)"
                )
                continue
            path = out.with_suffix(f".{fmt}")
            argv = [sys.executable, "-m", "scrapy", "export", "--format", fmt, "-O", str(path)]
            seconds, usage = _run(argv, env)
            rows = target.pages.count_documents({}) if fmt == "warc" else size
            peak = usage.ru_maxrss / 1024  # KiB on Linux
            _log(f"export {fmt} {size:,}: {rows / seconds:,.0f} rows/s, peak {peak:.0f} MiB")
            results.exports.append((fmt, rows, rows / seconds, peak, path.stat().st_size))
            path.unlink()


def render(results: Results, articles: int) -> str:
    lines = [
        HEADING,
        "",
        f"Written by `python -m bench.archive` (also run by `make bench`) on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
        f"{os.getloadavg()[0]:.2f} at the end. One crawl of "
        f"`python -m replica --articles {articles} --seed 7 --no-hostile` by one worker "
        f"({results.articles:,} articles in {results.crawl_seconds:.1f} s, "
        f"{results.crawl_cpu_ms:.1f} CPU ms/article for the whole crawl process), on fresh "
        "servers. Replica pages are smaller than the site's (its furniture is a guess), so "
        "bytes scale with the real pages; ratios and per-page CPU carry over better.",
        "",
        "### Archive bytes per article",
        "",
        "| | bytes/article |",
        "|---|---|",
        f"| page body as fetched | {results.raw:,.0f} |",
        f"| stored body (zstd 3) | {results.stored:,.0f} |",
        f"| whole `pages` document (body, headers, URLs, times) | {results.document:,.0f} |",
        "",
        "The same pages compressed other ways (compressing one half of the pages; the "
        "dictionary is trained on the other half):",
        "",
        "| codec | bytes/page | compress ms/page | decompress ms/page |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {b:,.0f} | {c:.3f} | {d:.3f} |" for n, b, c, d in results.codecs]
    lines += [
        "",
        "### Reparse",
        "",
        f"Medians of {results.reparse_repeat} jobs for each number of workers, interleaved "
        "(the slowest and fastest job's rate in brackets). "
        "Articles/s over the job (Redis's clock, from seeded to done); CPU of the command and "
        "its worker processes (the reparse also reads the pages from MongoDB and writes "
        "nothing, as the code did not change: every document comes out the same). Beside it, "
        "the crawl's own parse cost on the same pages in one process.",
        "",
        "| | articles/s | CPU ms/article |",
        "|---|---|---|",
        f"| article page object alone (`ArticlePage.to_item`) | {1000 / results.parse_ms:,.0f} "
        f"| {results.parse_ms:.2f} |",
        f"| the spider's callback (`parse_article`: page object and links) "
        f"| {1000 / results.callback_ms:,.0f} | {results.callback_ms:.2f} |",
    ]
    for workers, rate, cpu in results.reparse:
        low, high = results.reparse_spread.get(workers, (rate, rate))
        per_core = f"{rate / workers:,.0f}/core; {low:,.0f}–{high:,.0f}"
        lines.append(
            f"| `scrapy reparse --workers {workers}` | {rate:,.1f} ({per_core}) | {cpu:.2f} |"
        )
    lines += [
        "",
        "### Export",
        "",
        "`scrapy export --format F --output FILE`, one process; peak RSS of that process. "
        "The archive was grown by copying the crawled articles and pages under new ids, "
        "into a database without secondary indexes (the export reads by `_id`). Rows/s "
        "include the process's start-up (about a second). "
        "WARC rows are response records (one per stored version).",
        "",
        "| format | rows | rows/s | peak RSS MiB | file MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {fmt} | {rows:,} | {rate:,.0f} | {peak:.0f} | {size / 2**20:,.1f} |"
        for fmt, rows, rate, peak, size in results.exports
    ]
    if not results.exports:
        lines.append("| (not measured in this run: `--export-sizes ''`) | | | | |")
    lines += ["", *(f"Not measured in this run: {what}." for what in results.skipped)]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    from bench.__main__ import parse_sections

    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    head = text.split("\n## ", 1)[0].rstrip("\n") + "\n"
    sections = parse_sections(text)
    sections[HEADING] = section
    body = "\n".join(t.rstrip("\n") + "\n" for t in sections.values())
    path.write_text(head + "\n" + body)


def measure(
    articles: int, sizes: list[int], warc_max: int = 0, repeat: int = 3
) -> tuple[str, Results]:
    """Run every measurement; the BENCHMARKS.md section and the figures."""
    results = Results()
    with (
        ReplicaProcess(articles=articles, seed=7, extra_args=["--no-hostile"]) as replica,
        fresh_servers() as (red, mon),
    ):
        assert mon is not None
        env = _env(red.url, mon.url, replica.base_url)
        _log(f"crawl of {articles} articles")
        seconds, usage = _run(
            [sys.executable, "-m", "scrapy", "crawl", "tass", "-a", "since=all"], env
        )
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mon.url, tz_aware=True)
        try:
            db = client[DATABASE]
            results.articles = db.articles.count_documents({})
            results.crawl_seconds = seconds
            results.crawl_cpu_ms = 1000 * (usage.ru_utime + usage.ru_stime) / results.articles
            _log("archive sizes and codecs")
            pages = measure_archive(db, results)
            measure_parse(pages, replica.base_url, results)
            del pages
            measure_reparse(env, db, results, repeat)
            measure_exports(env, db, sizes, results, warc_max)
        finally:
            client.close()
    return render(results, articles), results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--export-sizes", default="10000,100000")
    parser.add_argument(
        "--warc-max-articles", type=int, default=0,
        help="skip the WARC export above this many articles (0: never)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="reparse jobs per worker count")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.export_sizes.split(",") if size]
    section, _ = measure(args.articles, sizes, args.warc_max_articles, args.repeat)
    print(section)
    write_section(args.output, section)
    _log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
