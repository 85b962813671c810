"""``scrapy reparse``: run the current extraction code on the archived pages, without the site.

``scrapy reparse [--since DATE] [--ids ID,...] [--section SLUG] [--workers N] [--again]``

Takes the articles that match (published on or after ``--since``, the given ids, the section),
reads back the archived page of each one's stored version and runs the crawl's own spider
callback and stages on it (``crawler.reparse.worker``), in ``--workers`` processes (default:
one per core; this one is the first). Only documents whose extracted fields change are written;
``revision`` does not move and no ``revisions`` document is written (``pipelines.reextract``).
Not one request goes to the site.

The job lives in Redis (``crawler.reparse.job``), named by the filters and the extractor version:
the same command run again resumes an interrupted job, and run on another machine against the
same Redis and MongoDB (with the same code) joins it. A finished job is not run twice (its
report is printed again) unless ``--again`` is given; a change to the extraction code is a new
job anyway.

It prints progress on standard error and, at the end, how many documents changed, per field.
Exit status: 0 when every page re-extracted; 1 when some no longer extract (listed), a worker
failed, or the job was interrupted (run it again to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import NotConfigured, UsageError
from scrapy.settings import Settings

from crawler import defaults, mongo
from crawler.commands.progress import Progress
from crawler.commands.servers import servers
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.mongo import MongoConfig
from crawler.reparse.job import JobStatus, ReparseJob, ReparseSpec, chunk_ranges
from crawler.reparse.worker import ReparseWorker, reparse_settings
from crawler.urls import SECTIONS
from crawler.version import extractor_version

POLL = 0.5
"""Seconds between looks at the job's progress."""
SEED_BATCH = 500
"""Chunks handed to Redis per call while seeding."""
SHOWN_FAILURES = 20


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[--since DATE] [--ids ID,...] [--section SLUG] [--workers N] [--again]"

    def short_desc(self) -> str:
        return "Re-extract the archived pages with the current code (no request to the site)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--since", help="articles published on or after DATE (YYYY-MM-DD)")
        parser.add_argument("--ids", help="only these article ids (comma-separated)")
        parser.add_argument("--section", help="only articles of this section (its slug)")
        parser.add_argument(
            "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)"
        )
        parser.add_argument("--again", action="store_true", help="run a finished job again")
        parser.add_argument("--worker", help=argparse.SUPPRESS)  # one worker process of a job

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        settings = self.settings
        if opts.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {opts.workers}")
        with servers(settings) as child_env:
            try:
                url = redis_url(settings)
                MongoConfig.from_settings(settings)
                stages = reparse_settings(settings)
                _chunk_size(settings)
            except (NotConfigured, ValueError) as exc:
                raise UsageError(str(exc), print_help=False) from exc
            keys = FrontierKeys(settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
            if opts.worker:
                self.exitcode = asyncio.run(work(settings, url, keys, opts.worker))
                return
            spec = ReparseSpec(
                extractor=extractor_version(stages),
                since=_since(opts.since),
                ids=_ids(opts.ids),
                section=_section(opts.section),
            )
            self.exitcode = asyncio.run(
                coordinate(
                    settings,
                    url,
                    keys,
                    spec,
                    workers=opts.workers,
                    again=opts.again,
                    child_env=child_env,
                )
            )


def _chunk_size(settings: Settings) -> int:
    size = settings.getint("TASS_REPARSE_CHUNK_SIZE", defaults.TASS_REPARSE_CHUNK_SIZE)
    if size <= 0:
        raise ValueError(f"TASS_REPARSE_CHUNK_SIZE must be > 0, got {size}")
    return size


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise UsageError(f"--since must be a date, YYYY-MM-DD, got {value!r}") from exc
    return day.replace(tzinfo=UTC)


def _ids(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        ids = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError as exc:
        raise UsageError(f"--ids must be article ids separated by commas, got {value!r}") from exc
    if not ids or ids[0] <= 0:
        raise UsageError(f"--ids must be positive article ids, got {value!r}")
    return tuple(ids)


def _section(value: str | None) -> str | None:
    if value is None:
        return None
    slug = value.strip().lower()
    if not slug or not slug.replace("-", "").isalpha():
        raise UsageError(f"--section must be a section or theme slug, got {value!r}")
    if slug == "sport":
        slug = "sports"
    if slug not in SECTIONS:
        print(f"reparse: {slug!r} is not one of the sections; taken as a theme slug", flush=True)
    return slug


def _job(settings: Settings, url: str, keys: FrontierKeys, job_id: str) -> ReparseJob:
    return ReparseJob(
        open_redis(url),
        keys.reparse(job_id),
        lease_seconds=settings.getfloat(
            "TASS_REPARSE_LEASE_SECONDS", defaults.TASS_REPARSE_LEASE_SECONDS
        ),
        keep_seconds=defaults.REPARSE_KEEP_SECONDS,
    )


async def coordinate(
    settings: Settings,
    url: str,
    keys: FrontierKeys,
    spec: ReparseSpec,
    *,
    workers: int,
    again: bool,
    child_env: dict[str, str],
) -> int:
    """Seed or join the job, run ``workers`` worker processes, report; the exit status."""
    job = _job(settings, url, keys, spec.job_id)
    try:
        begun = await _begin(settings, job, spec, again)
        status = await job.status()
        print(
            f"reparse job {spec.job_id} ({spec.describe()}; extractor {spec.extractor}): "
            f"{status.total} articles, {status.left} chunks to do"
            + ("" if begun != "done" else " (already done: --again runs it again)"),
            file=sys.stderr,
            flush=True,
        )
        interrupted = False
        codes: list[int] = []
        if status.status == "ready":
            interrupted, codes = await _run_workers(
                settings, url, keys, job, spec.job_id, workers=workers, child_env=child_env
            )
        final = await job.status()
        print(format_report(final))
        if interrupted or final.status != "done":
            print("reparse: not finished: run the same command again to resume", file=sys.stderr)
            return 1
        if any(code != 0 for code in codes):
            print(f"reparse: worker exit statuses {codes}", file=sys.stderr)
            return 1
        return 1 if final.failed else 0
    finally:
        await job.client.aclose()


async def _begin(settings: Settings, job: ReparseJob, spec: ReparseSpec, again: bool) -> str:
    """Seed the job, or wait for whoever seeds it; how it began."""
    token = uuid.uuid4().hex
    while True:
        begun = await job.begin(token, again=again)
        if begun == "seed":
            chunks, total = await asyncio.to_thread(_list_chunks, settings, spec)
            for start in range(0, len(chunks), SEED_BATCH):
                await job.add_chunks(token, chunks[start : start + SEED_BATCH])
            await job.ready(token, total, spec)
            return begun
        if begun in ("ready", "done"):
            return begun
        await asyncio.sleep(POLL)  # another process is seeding it


def _list_chunks(settings: Settings, spec: ReparseSpec) -> tuple[list[str], int]:
    """The job's chunks (``lo:hi`` ranges of article ids) and its number of articles."""
    with MongoConfig.from_settings(settings).open() as db:
        cursor = db[mongo.ARTICLES].find(spec.article_filter(), {"_id": 1}).sort("_id", 1)
        total = 0

        def ids() -> Iterator[int]:
            nonlocal total
            for doc in cursor:
                total += 1
                yield doc["_id"]

        chunks = list(chunk_ranges(ids(), _chunk_size(settings)))
    return chunks, total


async def _run_workers(
    settings: Settings,
    url: str,
    keys: FrontierKeys,
    job: ReparseJob,
    job_id: str,
    *,
    workers: int,
    child_env: dict[str, str],
) -> tuple[bool, list[int]]:
    """Work the job in this process and ``workers - 1`` more, showing progress until they all
    end; (interrupted, exit codes: this process's worker first).

    This process is the first worker: it has the code loaded already, and a process of its
    own would only wait meanwhile, so a job of ``--workers 1`` starts no process at all (one
    start-up of Scrapy and the project less, ~0.7 CPU s and a second before the first page)."""
    argv = [sys.executable, "-m", "scrapy", "reparse", "--worker", job_id]
    env = {**os.environ, **child_env}
    procs = [subprocess.Popen(argv, env=env) for _ in range(workers - 1)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    own = asyncio.create_task(_own_worker(settings, url, keys, job_id, stop))
    status = await job.status()
    try:
        with Progress("reparse", status.total, unit="articles") as progress:
            while not own.done() or any(p.poll() is None for p in procs):
                if stop.is_set():
                    for proc in procs:  # each finishes the chunk it holds, then stops
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(signal.SIGTERM)
                    break
                progress.update((await job.status()).pages)
                await asyncio.wait({own}, timeout=POLL)
            codes = [await own, *[await asyncio.to_thread(p.wait) for p in procs]]
            progress.update((await job.status()).pages)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return stop.is_set(), codes


async def _own_worker(
    settings: Settings, url: str, keys: FrontierKeys, job_id: str, stop: asyncio.Event
) -> int:
    """The coordinating process's own worker; its exit status, as a worker process's would be
    (an error is shown with its traceback, as a worker process dying of it would show it)."""
    try:
        return await work(settings, url, keys, job_id, stop)
    except Exception:
        traceback.print_exc()
        return 1


async def work(
    settings: Settings,
    url: str,
    keys: FrontierKeys,
    job_id: str,
    stop: asyncio.Event | None = None,
) -> int:
    """One worker of job ``job_id``: a worker process's whole life (``stop`` set by its
    SIGINT and SIGTERM), or the coordinating process's own (``stop`` given)."""
    job = _job(settings, url, keys, job_id)
    try:
        status = await job.status()
        if status.spec is None:
            print(f"reparse: no job {job_id} in Redis", file=sys.stderr)
            return 2
        spec = ReparseSpec.from_json(status.spec)
        mine = extractor_version(reparse_settings(settings))
        if spec.extractor != mine:
            print(
                f"reparse: job {job_id} runs extractor {spec.extractor}; this code is {mine}",
                file=sys.stderr,
            )
            return 2
        worker = ReparseWorker.build(settings, job, spec)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)
        return 0
    finally:
        await job.client.aclose()


def format_report(status: JobStatus) -> str:
    """What a job did: articles by outcome, documents changed per field, failures."""
    counts = status.counts
    started, finished = status.started_at(), status.finished_at()
    took = (finished - started).total_seconds() if started and finished else None
    rate = f", {status.pages / took:.1f} articles/s" if took else ""
    lines = [
        f"re-extracted {status.pages} of {status.total} articles"
        + (f" in {took:.1f}s{rate}" if took is not None else ""),
        f"  documents changed:   {counts.get('updated', 0)}",
        f"  unchanged:           {counts.get('unchanged', 0)}",
        f"  newer version first: {counts.get('superseded', 0)}",
        f"  no archived page:    {counts.get('no_page', 0)}",
        f"  gone meanwhile:      {counts.get('missing', 0)}",
    ]
    changed = sorted(
        ((k.removeprefix("changed/"), n) for k, n in counts.items() if k.startswith("changed/")),
        key=lambda kv: (-kv[1], kv[0]),
    )
    lines.append("changes per field:" if changed else "changes per field: none")
    lines += [f"  {name:<20} {n:>8}" for name, n in changed]
    failed = sorted(
        ((k.removeprefix("failed/"), n) for k, n in counts.items() if k.startswith("failed/")),
        key=lambda kv: (-kv[1], kv[0]),
    )
    if failed:
        lines.append(f"no longer extract: {sum(n for _, n in failed)}")
        lines += [f"  {reason:<32} {n:>8}" for reason, n in failed]
        shown = sorted(status.failed.items())[:SHOWN_FAILURES]
        lines += [f"    {article_id}: {reason}" for article_id, reason in shown]
        if len(status.failed) > SHOWN_FAILURES:
            lines.append(f"    ... and {len(status.failed) - SHOWN_FAILURES} more")
    return "\n".join(lines)
