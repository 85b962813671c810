"""``scrapy export``: the stored articles (or their raw pages) as a file, streamed.

``scrapy export --format {jsonl,csv,parquet,warc} [--output PATH] [--since DATE]
[--until DATE] [--section SLUG] [--kind KIND] [--fields a,b,...]``

Writes to ``--output``, or to standard output when it is not given (Parquet and WARC, being
binary, only to a pipe or a file, never to a terminal). ``--since``/``--until`` keep the
articles published on or after the first day and up to the end of the last (UTC);
``--section`` and ``--kind`` keep one section or kind; ``--fields`` picks columns (in the
order given) of JSON Lines, CSV and Parquet. A WARC holds one response record for each
stored version of the chosen articles. Formats and columns: ``crawler.export``. Articles go
out in id order, read in batches: memory stays the same whatever the archive's size. A
progress bar shows on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, ClassVar

from pymongo.database import Database
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import NotConfigured, UsageError

from crawler import mongo
from crawler.commands.progress import Progress
from crawler.commands.servers import servers
from crawler.export import (
    BINARY,
    COLUMNS,
    FORMATS,
    CsvWriter,
    JsonLinesWriter,
    ParquetWriter,
    WarcWriter,
)
from crawler.items import ARTICLE_KINDS
from crawler.mongo import Document, MongoConfig

BATCH = 500
"""Documents read from MongoDB at a time (and articles whose pages are read together)."""


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "--format {jsonl,csv,parquet,warc} [--output PATH] [filters]"

    def short_desc(self) -> str:
        return "Write the stored articles (or their raw pages, as WARC) to a file or stdout"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--output", "-O", help="the file to write (default: stdout)")
        parser.add_argument("--since", help="published on or after this day (YYYY-MM-DD)")
        parser.add_argument("--until", help="published up to the end of this day (YYYY-MM-DD)")
        parser.add_argument("--section", help="only this section (its slug)")
        parser.add_argument("--kind", choices=ARTICLE_KINDS, help="only this kind")
        parser.add_argument("--fields", help="columns to write, comma-separated (not for warc)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        query = article_query(opts.since, opts.until, opts.section, opts.kind)
        columns = _columns(opts.fields, opts.fmt)
        if opts.output is None and opts.fmt in BINARY and sys.stdout.isatty():
            raise UsageError(f"{opts.fmt} is binary: give --output PATH, or pipe it")
        with servers(self.settings):
            try:
                config = MongoConfig.from_settings(self.settings)
            except (NotConfigured, ValueError) as exc:
                raise UsageError(str(exc), print_help=False) from exc
            try:
                with config.open() as db, _opened(opts.output) as out:
                    export(db, out, opts.fmt, query, columns)
            except BrokenPipeError:
                # The reader went away (`| head`): stop quietly, as command-line tools do.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.exitcode = 1


def _day(value: str, option: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise UsageError(f"{option} must be a date, YYYY-MM-DD, got {value!r}") from exc


def article_query(
    since: str | None, until: str | None, section: str | None, kind: str | None
) -> Document:
    """The MongoDB filter of the chosen articles."""
    query: Document = {}
    published: Document = {}
    if since:
        published["$gte"] = _day(since, "--since")
    if until:
        published["$lt"] = _day(until, "--until") + timedelta(days=1)
    if published:
        query["published_at"] = published
    if section:
        query["section"] = section.strip().lower()
    if kind:
        query["kind"] = kind
    return query


def _columns(fields: str | None, fmt: str) -> tuple[str, ...]:
    if not fields:
        return COLUMNS
    if fmt == "warc":
        raise UsageError("--fields does not apply to warc (a record is a whole page)")
    chosen = tuple(f.strip() for f in fields.split(",") if f.strip())
    unknown = [f for f in chosen if f not in COLUMNS]
    if unknown or not chosen:
        raise UsageError(
            f"--fields: unknown {', '.join(unknown) or 'nothing'}; known: {', '.join(COLUMNS)}"
        )
    return chosen


@contextlib.contextmanager
def _opened(output: str | None) -> Iterator[IO[bytes]]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    temporary = path.with_name(f".{path.name}.part")
    try:
        with temporary.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)  # a file at PATH is always a whole export
    finally:
        temporary.unlink(missing_ok=True)


def export(
    db: Database[Document], out: IO[bytes], fmt: str, query: Document, columns: tuple[str, ...]
) -> int:
    """Write the chosen articles (or their pages) to ``out``; how many rows or records."""
    articles = db[mongo.ARTICLES]
    total = articles.count_documents(query)
    if fmt == "warc":
        return _export_pages(db, out, query, total)
    projection = {name: 1 for name in columns if name != "id"}
    cursor = mongo.stream_by_id(articles, query, projection, batch_size=BATCH)
    writer: Any
    if fmt == "jsonl":
        writer = JsonLinesWriter(out, columns)
    elif fmt == "csv":
        writer = CsvWriter(out, columns)
    else:
        writer = _need_extra(lambda: ParquetWriter(out, columns))
    count = 0
    with Progress("export", total, unit="rows") as progress:
        for doc in cursor:
            writer.write(doc)
            count += 1
            if count % BATCH == 0:
                progress.update(count)
        writer.close()
        progress.update(count)
    return count


def _export_pages(db: Database[Document], out: IO[bytes], query: Document, total: int) -> int:
    from importlib.metadata import version

    writer: WarcWriter = _need_extra(
        lambda: WarcWriter(out, f"tass-crawler/{version('tass-crawler')}")
    )
    ids = (d["_id"] for d in mongo.stream_by_id(db[mongo.ARTICLES], query, {"_id": 1}))
    count = done = 0
    with Progress("export", total, unit="articles") as progress:
        while batch := [i for _, i in zip(range(BATCH), ids, strict=False)]:
            pages = db[mongo.PAGES].find({"article_id": {"$in": batch}})
            for page in pages.sort([("article_id", 1), ("revision", 1)]):
                writer.write(page)
                count += 1
            done += len(batch)
            progress.update(done)
        writer.close()
    return count


def _need_extra(make: Any) -> Any:
    try:
        return make()
    except ImportError as exc:
        raise UsageError(
            f"this format needs the 'export' extra: pip install -e '.[export]' ({exc})",
            print_help=False,
        ) from exc
