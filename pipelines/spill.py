"""Batches the store could not write to MongoDB, kept on disk and written when a store opens.

Files
    A closing store whose batch outlived MongoDB (``pipelines.store``) calls ``write``: one
    JSON Lines file per batch, ``<TASS_DATA_DIR>/spill/store-<pid>-<ns>.jsonl``, one record
    per line, ``{"collection": "articles" | "failures", "doc": {...}}`` in canonical extended
    JSON (datetimes, 64-bit integers and binary come back as they were); an article extracted
    from an archived response carries its raw page too (``"page": {...}``, ``crawler.archive``).
    The file is written under a hidden temporary name, flushed to disk and renamed, so a
    ``*.jsonl`` file is always whole.

Read-back
    ``replay`` runs when a store opens. It takes each ``store-*.jsonl`` file of the folder,
    oldest first, under an exclusive ``flock`` (the workers of a compose stack share the
    folder; a worker that dies lets go of its lock), and hands its records to the store's own
    write path: the same idempotent batch write as for crawled items, retried through an
    outage. Only once MongoDB has acknowledged the batch is the file deleted. So a file is
    written at least once, and an article written twice is stored once (the second time is
    ``unchanged``); a failure record written twice counts its attempts twice.

    Nothing is dropped in silence: a file that is not a spill file (a line that does not
    parse, an unknown collection) is renamed ``*.jsonl.bad`` and logged, and nothing of it is
    written; records MongoDB refuses for good go to ``*.jsonl.rejected``, logged with their
    URLs; a temporary file nobody is writing any more (its writer died mid-write; its items
    were never acknowledged, so the frontier fetches them again) is renamed ``*.bad`` too. When
    MongoDB stays away past the retry deadline the file is kept for the next store to open.

Stats: ``tass/store/spill_replayed`` (records written back), ``spill_files_replayed``,
``spill_bad_files``, ``spill_rejected``, ``spill_kept`` (files left for later).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any

from bson import json_util
from scrapy.statscollectors import StatsCollector

from crawler import mongo

logger = logging.getLogger(__name__)

Document = dict[str, Any]
PATTERN = "store-*.jsonl"
COLLECTIONS = frozenset({mongo.ARTICLES, mongo.FAILURES})
# Canonical extended JSON keeps every BSON type; datetimes come back aware, in UTC, as the
# store's client gives them (the store compares them with stored ones).
JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)
ABANDONED_AFTER = 60.0
"""Seconds after which an unlocked temporary file is taken for abandoned (a write takes ms)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One spilled operation: the collection it belongs to and the document the store built."""

    collection: str
    doc: Document
    page: Document | None = None
    """An article's raw page (``pages``), written back with it."""


class SpillFileError(ValueError):
    """A file in the spill folder is not a whole spill file."""


# A write function takes the records of one file and returns the ones MongoDB refused for good;
# it raises when MongoDB stays unreachable.
WriteRecords = Callable[[list[Record]], Awaitable[list[Record]]]


def write(folder: Path, records: Iterable[Record]) -> Path:
    """Write ``records`` to a new spill file in ``folder`` (created if needed); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"store-{os.getpid()}-{time.time_ns()}.jsonl"
    final, temporary = folder / name, folder / f".{name}.tmp"
    with temporary.open("x", encoding="utf-8") as out:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)  # a replay never takes a file being written
        out.writelines(_line(record) for record in records)
        out.flush()
        os.fsync(out.fileno())
        temporary.rename(final)
    _sync_folder(folder)
    return final


def _line(record: Record) -> str:
    data: Document = {"collection": record.collection, "doc": record.doc}
    if record.page is not None:
        data["page"] = record.page
    return json_util.dumps(data, json_options=JSON_OPTIONS) + "\n"


def read(path: Path) -> list[Record]:
    """The records of a spill file; ``SpillFileError`` naming the line that is not one."""
    with path.open(encoding="utf-8") as handle:
        return _parse(handle, path)


def _parse(handle: IO[str], path: Path) -> list[Record]:
    records: list[Record] = []
    try:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json_util.loads(line, json_options=JSON_OPTIONS)
            except ValueError as exc:
                raise SpillFileError(f"{path} line {number}: not extended JSON ({exc})") from exc
            records.append(_record(data, f"{path} line {number}"))
    except UnicodeDecodeError as exc:
        raise SpillFileError(f"{path}: not UTF-8 text ({exc})") from exc
    return records


def _record(data: Any, where: str) -> Record:
    if not isinstance(data, dict) or set(data) - {"page"} != {"collection", "doc"}:
        raise SpillFileError(f"{where}: not a {{collection, doc}} record")
    collection, doc, page = data["collection"], data["doc"], data.get("page")
    if collection not in COLLECTIONS:
        raise SpillFileError(f"{where}: unknown collection {collection!r}")
    if not isinstance(doc, dict) or not isinstance(doc.get("url"), str):
        raise SpillFileError(f"{where}: the document has no url")
    if collection == mongo.ARTICLES and not isinstance(doc.get("_id"), int):
        raise SpillFileError(f"{where}: the article has no integer _id")
    if page is not None and (
        collection != mongo.ARTICLES
        or not isinstance(page, dict)
        or page.get("article_id") != doc["_id"]
    ):
        raise SpillFileError(f"{where}: the raw page is not this article's")
    return Record(collection, doc, page)


async def replay(folder: Path, write_records: WriteRecords, stats: StatsCollector) -> None:
    """Write every spill file of ``folder`` back through ``write_records``; see the module."""
    if not await asyncio.to_thread(folder.is_dir):
        return
    await asyncio.to_thread(_set_aside_abandoned, folder, stats)
    for path in await asyncio.to_thread(_oldest_first, folder):
        await _replay_file(path, write_records, stats)


async def _replay_file(path: Path, write_records: WriteRecords, stats: StatsCollector) -> None:
    with _claimed(path) as handle:
        if handle is None:
            return  # another store is replaying it, or has just done so
        try:
            records = await asyncio.to_thread(_parse, handle, path)
        except SpillFileError as exc:
            bad = await asyncio.to_thread(_rename, path, ".bad")
            stats.inc_value("tass/store/spill_bad_files")
            logger.error("Spill file not written back, kept as %s: %s", bad, exc)
            return
        try:
            refused = await write_records(records)
        except Exception as exc:
            stats.inc_value("tass/store/spill_kept")
            logger.error(
                "Spilled batch %s (%d items) not written back yet, kept for the next store "
                "to open: %s",
                path,
                len(records),
                exc,
            )
            return
        if refused:
            rejected = path.with_name(path.name + ".rejected")
            await asyncio.to_thread(_write_lines, rejected, refused)
            stats.inc_value("tass/store/spill_rejected", len(refused))
            logger.error(
                "MongoDB refused %d spilled items for good (kept in %s): %s",
                len(refused),
                rejected,
                ", ".join(str(r.doc.get("url")) for r in refused[:10]),
            )
        await asyncio.to_thread(path.unlink)
        written = len(records) - len(refused)
        stats.inc_value("tass/store/spill_replayed", written)
        stats.inc_value("tass/store/spill_files_replayed")
        logger.warning("Wrote back %d spilled items from %s (file deleted)", written, path)


@contextlib.contextmanager
def _claimed(path: Path) -> Iterator[IO[str] | None]:
    """The file opened and exclusively locked by this process, or None if it cannot be."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            same = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False  # replayed and deleted between our open and our lock
        yield handle if same else None


def _oldest_first(folder: Path) -> list[Path]:
    entries = []
    for path in folder.glob(PATTERN):
        with contextlib.suppress(FileNotFoundError):
            entries.append((path.stat().st_mtime_ns, path.name, path))
    return [path for _, _, path in sorted(entries)]


def _set_aside_abandoned(folder: Path, stats: StatsCollector) -> None:
    for path in folder.glob(".store-*.jsonl.tmp"):
        try:
            if time.time() - path.stat().st_mtime < ABANDONED_AFTER:
                continue  # just created: its writer may not hold its lock yet
            handle = path.open("rb")
        except FileNotFoundError:
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being written right now
            bad = _rename(path, ".bad")
        stats.inc_value("tass/store/spill_bad_files")
        logger.error(
            "Incomplete spill file %s (its writer died while writing; those items were never "
            "acknowledged and are fetched again): kept as %s",
            path,
            bad,
        )


def _rename(path: Path, suffix: str) -> Path:
    target = path.with_name(path.name.lstrip(".") + suffix)
    path.rename(target)
    return target


def _write_lines(path: Path, records: list[Record]) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.writelines(_line(record) for record in records)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
