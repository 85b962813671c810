"""The store stage: batched, race-safe writes of articles and failures to MongoDB.

Buffering and acknowledgement
    ``process_item`` appends the item to a buffer and awaits a future that the batch's flush
    resolves, so it returns only once the item is written (acknowledged by the server with the
    client's write concern) while items of many responses still share one batch. A batch is
    flushed when ``TASS_STORE_BATCH_SIZE`` items wait, ``TASS_STORE_FLUSH_INTERVAL`` seconds
    after the oldest waiting item came, as soon as every response in flight waits in a batch of
    the stages (nothing more can join it: ``pipelines.common.nothing_else_coming``), and at
    close (the shared batcher, ``crawler.batch``).
    One flush runs at a time;
    pymongo runs in a worker thread, never on the event loop.

Outages
    A batch that fails with a transient error (server away, restarting, stepping down) is kept
    and retried with capped exponential backoff, for up to ``TASS_MONGO_RETRY_DEADLINE``
    seconds; once the spider closes (or the crawler is stopped: ``mongo.ShutdownClock``), for at
    most ``TASS_STORE_CLOSE_DEADLINE`` more. A batch that
    still cannot be written is spilled as canonical extended JSON lines to
    ``<TASS_DATA_DIR>/spill/store-<pid>-<time>.jsonl`` (logged as an error with the count), and
    its items' ``process_item`` raise ``StoreUnavailable``: they are not acknowledged. A batch is
    idempotent, so retrying one that half-succeeded is safe. When a store opens, it writes the
    spilled batches back through the same batch write and deletes each file once written
    (``pipelines.spill``).

Articles (collection ``articles``, ``_id`` = article id)
    One document per id whatever the number of workers. A batch first writes its articles
    blind (``MongoWriter._write_blind``): one insert of them all, each as its first version;
    the ids found stored then get one upsert each on ``(_id, content_hash)``, which moves
    only ``last_seen_at`` of a stored version with the same content. So a batch of new
    articles is one write and reads nothing back (and a batch of unchanged re-fetches reads
    only their revisions, once, for their pages). An article stored with other content makes
    its upsert a duplicate-key error; it goes to the next round, which reads the stored
    versions, then writes one unordered bulk:

    - new id: insert with ``revision: 1``, ``first_seen_at`` = ``last_seen_at`` = now;
    - same ``content_hash``: only ``last_seen_at`` moves (``$max``);
    - different ``content_hash``: the stored version goes to ``revisions`` (upsert on
      ``(article_id, revision)``, so a retry or a rival worker writes it once) and the article is
      replaced with ``revision + 1``, conditioned on the old ``content_hash`` and ``revision``;
    - a version whose ``modified_at`` is older than the stored one is stale: counted, and only
      ``last_seen_at`` moves (an out-of-order fetch must not revert an edit).

    A rival worker's write shows up as a duplicate-key error on that one operation (an insert
    that lost, or a conditional upsert whose condition no longer holds); the item is read again
    and re-applied in the next round. Items of one batch touching the same id or URL go in
    successive rounds, in arrival order. A stored article removes any ``failures`` document of
    its URL or id (it recovered): the articles that may have one (``pipelines.failed``; most
    never failed, and a batch of them sends no delete).

    Each new version records the ``extractor`` that produced it (``crawler.version``).

Raw pages (collection ``pages``, unique ``(article_id, revision)``; ``crawler.archive``)
    An article item that carries its response (the raw archive is on) has it written in the
    same batch, after its article: for an insert or a new revision the page of that version,
    and for an unchanged re-fetch the page of the stored version if it has none yet (an
    article stored before the archive existed, or a batch retried after its article was
    written but its page was not: the retry finds the article unchanged and writes the page
    then). ``$setOnInsert``: a version keeps the first response that produced it. A stale
    version gets no page. So a request is acknowledged only once its page is written too.

Failures (collection ``failures``, unique ``url``)
    A final ``PageFailure`` upserts by URL: ``$inc attempts`` (by the item's ``attempts``),
    ``$set`` reason, detail, status, article_id, ``last_failed_at``, ``$unset retry``;
    ``$setOnInsert`` ``first_failed_at``. A failed attempt whose retry waits in the frontier
    (``retry_at`` set: the retry middleware records it before it queues the retry) ``$set``s
    only ``retry`` (``at``: when it is due, reason, detail, status); a URL with no document yet
    gets one with ``attempts: 0`` (no final failure so far). ``RetrySettled`` (the retry
    answered) drops ``retry``, and the document when it holds nothing else (``attempts: 0``).
    So every URL whose retry Redis held is in MongoDB until it is stored or fails for good
    (``crawler.frontier.recovery`` queues those again).

Indexes are created at open: articles ``published_at``, ``section``, ``tags``,
``minhash_bands`` (multikey: one entry per band key), ``duplicate_of``; failures unique ``url``,
``article_id`` and (sparse) ``retry.at``; revisions unique ``(article_id, revision)``.
Revisions keep the old ``minhash`` but not its bands.

Stats: ``tass/store/inserted``, ``updated``, ``unchanged``, ``stale``, ``revisions``, ``pages``,
``failures``, ``pending_retries``, ``settled_retries``, ``recovered``, ``conflicts``,
``batches``, ``retries``, ``errors``, ``spilled``,
and the read-back's ``spill_*`` (``pipelines.spill``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

import bson
from pymongo import ASCENDING, DeleteMany, InsertOne, UpdateMany, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from crawler import defaults, mongo
from crawler.batch import Batcher
from crawler.frontier import signals as frontier_signals
from crawler.items import ArticleItem, PageFailure, RetrySettled
from crawler.mongo import Document, MongoConfig, TransientMongoError
from crawler.version import extractor_version
from pipelines import spill
from pipelines.common import is_article, is_failure, nothing_else_coming, park, utcnow
from pipelines.failed import KnownFailures
from pipelines.schema import (
    ARTICLE_INDEXES,
    REVISION_DROPPED,
    article_doc,
    failure_doc,
    page_for,
)
from pipelines.signals import StoredArticle, article_stored

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
SETTLED = "settled"
"""The key that marks a settled retry's op (``{"url": …, SETTLED: True}``) in a spill file."""
MAX_ROUNDS = 100
Outcome = Literal["inserted", "updated", "unchanged", "stale", "failure", "retry", "settled"]
_AS_IS: frozenset[Outcome] = frozenset(("inserted", "updated", "unchanged"))
"""An article's outcomes that leave its own version stored (``ArticleItem.stored_as_is``)."""


class StoreUnavailable(RuntimeError):
    """The item could not be written to MongoDB (it was spilled to disk, or lost: see logs)."""


class StoreWriteError(RuntimeError):
    """MongoDB refused this one item for a reason retrying cannot fix."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How the store batches and how long it holds on through an outage at close."""

    batch_size: int = defaults.TASS_STORE_BATCH_SIZE
    flush_interval: float = defaults.TASS_STORE_FLUSH_INTERVAL
    close_deadline: float = defaults.TASS_STORE_CLOSE_DEADLINE
    spill_dir: str = ".tass/spill"

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        batch_size = settings.getint("TASS_STORE_BATCH_SIZE", defaults.TASS_STORE_BATCH_SIZE)
        if batch_size <= 0:
            raise ValueError(f"TASS_STORE_BATCH_SIZE must be > 0, got {batch_size}")
        interval = settings.getfloat(
            "TASS_STORE_FLUSH_INTERVAL", defaults.TASS_STORE_FLUSH_INTERVAL
        )
        if not interval > 0:
            raise ValueError(f"TASS_STORE_FLUSH_INTERVAL must be > 0 seconds, got {interval}")
        close = settings.getfloat("TASS_STORE_CLOSE_DEADLINE", defaults.TASS_STORE_CLOSE_DEADLINE)
        if not close >= 0:
            raise ValueError(f"TASS_STORE_CLOSE_DEADLINE must be >= 0 seconds, got {close}")
        data_dir = (settings.get("TASS_DATA_DIR") or "").strip() or defaults.TASS_DATA_DIR
        return cls(batch_size, interval, close, str(Path(data_dir) / "spill"))


@dataclass(slots=True)
class _Op:
    """One buffered item made ready for MongoDB."""

    kind: Literal["article", "failure", "settled"]
    doc: Document
    keys: frozenset[tuple[str, Any]]
    page: Document | None = None
    """The raw page of an article (``pages``; ``crawler.archive``), written with the version."""
    failed_before: bool = True
    """An article whose request may have failed before (``ArticleItem.failed_before``; an op
    read back from a spill file, whose item is gone, is taken to have)."""


@dataclass(slots=True)
class WriteReport:
    """What one batch did: an outcome (or an error) per op, and the side counts."""

    outcomes: dict[int, Outcome | StoreWriteError] = field(default_factory=dict)
    revisions: int = 0
    recovered: int = 0
    conflicts: int = 0
    pages: int = 0
    stored: dict[int, Document] = field(default_factory=dict)
    """The documents of the ops that inserted an article or a revision, as written."""


def _op_for(item: Any) -> _Op:
    if is_failure(item):
        return _op_of(mongo.FAILURES, failure_doc(item))
    if isinstance(item, RetrySettled):
        return _op_of(mongo.FAILURES, {"url": item.url, SETTLED: True})
    doc = article_doc(item)
    return _op_of(mongo.ARTICLES, doc, page_for(item, doc), failed_before=item.failed_before)


def _op_of(
    collection: str, doc: Document, page: Document | None = None, *, failed_before: bool = True
) -> _Op:
    """The op writing ``doc`` (an ``article_doc``, a ``failure_doc`` or a settled retry's
    ``{url, SETTLED: True}``) to ``collection``, and for an article its raw ``page``
    (``schema.page_for``) if it has one."""
    if collection == mongo.FAILURES:
        keys = {("url", doc["url"])}
        if doc.get("article_id") is not None:
            keys.add(("id", doc["article_id"]))
        op = _Op("settled" if doc.get(SETTLED) else "failure", doc, frozenset(keys))
    else:
        keys = {("id", doc["_id"]), ("url", doc["url"])}
        op = _Op("article", doc, frozenset(keys), page, failed_before)
    bson.encode(op.doc)  # an unencodable value fails here, for this item alone
    if op.page is not None:
        bson.encode(op.page)
    return op


def _split_round(ops: list[_Op], pending: list[int]) -> tuple[list[int], list[int]]:
    """The ops that may go together (no shared id or URL), keeping arrival order per key."""
    current: list[int] = []
    later: list[int] = []
    used: set[tuple[str, Any]] = set()
    blocked: set[tuple[str, Any]] = set()
    for index in pending:
        keys = ops[index].keys
        if keys & used or keys & blocked:
            later.append(index)
            blocked |= keys
        else:
            current.append(index)
            used |= keys
    return current, later


class MongoWriter:
    """The blocking half of the store: pymongo calls, run in a worker thread."""

    def __init__(self, db: Database[Document], extractor: str = "") -> None:
        self.articles = db[mongo.ARTICLES]
        self.failures = db[mongo.FAILURES]
        self.revisions = db[mongo.REVISIONS]
        self.pages = db[mongo.PAGES]
        self.extractor = extractor
        self.known = KnownFailures()

    def ensure_indexes(self) -> None:
        for name in ARTICLE_INDEXES:
            self.articles.create_index([(name, ASCENDING)])
        self.failures.create_index([("url", ASCENDING)], unique=True)
        self.failures.create_index([("article_id", ASCENDING)])
        self.failures.create_index([("retry.at", ASCENDING)], sparse=True)
        self.revisions.create_index(
            [("article_id", ASCENDING), ("revision", ASCENDING)], unique=True
        )
        self.pages.create_index([("article_id", ASCENDING), ("revision", ASCENDING)], unique=True)

    def write(self, ops: list[_Op]) -> WriteReport:
        """Apply ``ops`` in rounds until each has an outcome; raises on a transient error."""
        report = WriteReport()
        self.known.refresh(self.failures)
        pending = list(range(len(ops)))
        read: set[int] = set()  # article ops found stored with other content: read them first
        for _ in range(MAX_ROUNDS):
            if not pending:
                return report
            current, later = _split_round(ops, pending)
            redo, found = self._round([(i, ops[i]) for i in current], report, utcnow(), read)
            report.conflicts += len(redo)
            read.update(found)
            pending = sorted(redo + found + later)
        raise RuntimeError(f"{len(pending)} items still conflict after {MAX_ROUNDS} rounds")

    def _round(
        self, batch: list[tuple[int, _Op]], report: WriteReport, now: datetime, read: set[int]
    ) -> tuple[list[int], list[int]]:
        """One round: the ops to redo (a rival's write moved their condition), and the article
        ops whose blind write found them stored with other content (read in the next round)."""
        blind = [(i, op.doc) for i, op in batch if op.kind == "article" and i not in read]
        articles = [(i, op.doc) for i, op in batch if op.kind == "article" and i in read]
        failures = [(i, op.doc) for i, op in batch if op.kind == "failure"]
        settled = [(i, op.doc) for i, op in batch if op.kind == "settled"]
        pages = {i: op.page for i, op in batch if op.page is not None}
        recovering = {
            i
            for i, op in batch
            if op.kind == "article"
            and self.known.may_have(op.doc["url"], op.doc["_id"], op.failed_before)
        }
        redo: list[int] = []
        found: list[int] = []
        if blind:
            found = self._write_blind(blind, report, now, pages, recovering)
        if articles:
            redo += self._write_articles(articles, report, now, pages, recovering)
        if failures:
            redo += self._write_failures(failures, report, now)
        if settled:
            self._write_settled(settled, report)
        return redo, found

    def _write_blind(
        self,
        articles: list[tuple[int, Document]],
        report: WriteReport,
        now: datetime,
        pages: dict[int, Document],
        recovering: set[int],
    ) -> list[int]:
        """Write articles without reading their stored versions first. Each is inserted as
        its first version (revision 1); an id stored already (a re-fetch, an edit, a rival's
        insert) refuses it as a duplicate key and gets one upsert on ``(_id, content_hash)``
        (``_touch``): a stored version with the same content only has its ``last_seen_at``
        moved, and one with other content refuses that too, so the op is returned to go
        through the read-then-write path (``_write_articles``). So a batch of new articles
        reads nothing and is one insert (a server answers an insert without looking for a
        match first: 100 articles cost SecantusDB 0.1 s inserted, 0.24 s upserted), and a
        batch of re-fetches reads only the revisions its pages need."""
        first = {index: self._first_version(doc, now) for index, doc in articles}
        errors = _bulk(self.articles, [InsertOne(first[index]) for index, _ in articles])
        written: list[tuple[int, Document]] = []
        stored: list[tuple[int, Document]] = []
        for position, (index, doc) in enumerate(articles):
            error = errors.get(position)
            if error is None:
                written.append((index, doc))
            elif error.get("code") == DUPLICATE_KEY:
                stored.append((index, doc))
            else:
                report.outcomes[index] = StoreWriteError(str(error.get("errmsg")))
        touched, unchanged, found = self._touch(stored, first, report, now)
        written += touched
        for index, _ in written:
            report.outcomes[index] = "inserted"
            report.stored[index] = first[index]
        versions = {index: 1 for index, _ in written}
        versions.update(self._unchanged_revisions(unchanged, report, pages))
        written += unchanged
        self._write_pages({i: v for i, v in versions.items() if i in pages}, pages, report)
        self._recovered([(i, doc) for i, doc in written if i in recovering], report)
        return found

    def _touch(
        self,
        articles: list[tuple[int, Document]],
        first: dict[int, Document],
        report: WriteReport,
        now: datetime,
    ) -> tuple[list[tuple[int, Document]], list[tuple[int, Document]], list[int]]:
        """One upsert each on ``(_id, content_hash)`` for articles whose id was found stored:
        the same content has its ``last_seen_at`` moved (``$max``), other content is a
        duplicate-key error. Returns the articles it inserted after all (their id was gone
        meanwhile), those it found unchanged, and the ops found stored with other content."""
        if not articles:
            return [], [], []
        requests: list[UpdateOne] = []
        for index, doc in articles:
            once = {
                k: v
                for k, v in first[index].items()
                if k not in ("_id", "content_hash", "last_seen_at")
            }
            requests.append(
                UpdateOne(
                    {"_id": doc["_id"], "content_hash": doc["content_hash"]},
                    {"$setOnInsert": once, "$max": {"last_seen_at": now}},
                    upsert=True,
                )
            )
        errors, upserted = _bulk_upserted(self.articles, requests)
        inserted: list[tuple[int, Document]] = []
        unchanged: list[tuple[int, Document]] = []
        found: list[int] = []
        for position, (index, doc) in enumerate(articles):
            error = errors.get(position)
            if error is None and position in upserted:
                inserted.append((index, doc))
            elif error is None:
                unchanged.append((index, doc))
            elif error.get("code") == DUPLICATE_KEY:
                found.append(index)
            else:
                report.outcomes[index] = StoreWriteError(str(error.get("errmsg")))
        return inserted, unchanged, found

    def _first_version(self, doc: Document, now: datetime) -> Document:
        """The document a new article id is inserted as."""
        return {
            **doc,
            "revision": 1,
            "extractor": self.extractor,
            "first_seen_at": now,
            "last_seen_at": now,
        }

    def _unchanged_revisions(
        self,
        unchanged: list[tuple[int, Document]],
        report: WriteReport,
        pages: dict[int, Document],
    ) -> dict[int, int]:
        """Mark re-fetches whose content is stored ``unchanged``; the stored revision of each
        that carries a page (one read for them all), for its page. A version a rival replaced
        in between has no page written for it: it is no longer the stored one."""
        for index, _ in unchanged:
            report.outcomes[index] = "unchanged"
        wanted = {doc["_id"]: (index, doc) for index, doc in unchanged if index in pages}
        if not wanted:
            return {}
        versions: dict[int, int] = {}
        projection = {"revision": 1, "content_hash": 1}
        for stored in self.articles.find({"_id": {"$in": list(wanted)}}, projection):
            index, doc = wanted[stored["_id"]]
            if stored.get("content_hash") == doc["content_hash"]:
                versions[index] = stored.get("revision") or 1
        return versions

    def _recovered(self, written: list[tuple[int, Document]], report: WriteReport) -> None:
        """A stored article removes any ``failures`` document of its URL or id (called with
        those that may have one: ``pipelines.failed``)."""
        if not written:
            return
        report.recovered += _bulk_deleted(
            self.failures,
            [
                DeleteMany({"url": {"$in": [doc["url"] for _, doc in written]}}),
                DeleteMany({"article_id": {"$in": [doc["_id"] for _, doc in written]}}),
            ],
        )

    def _write_articles(
        self,
        articles: list[tuple[int, Document]],
        report: WriteReport,
        now: datetime,
        pages: dict[int, Document],
        recovering: set[int],
    ) -> list[int]:
        ids = [doc["_id"] for _, doc in articles]
        stored = {d["_id"]: d for d in self.articles.find({"_id": {"$in": ids}})}
        requests: list[InsertOne[Document] | UpdateOne] = []
        owners: list[int] = []
        planned: dict[int, Outcome] = {}
        versions: dict[int, int] = {}  # the revision each article op leaves stored
        stored_docs: dict[int, Document] = {}  # what an insert or a revision writes
        revisions: list[UpdateOne] = []
        for index, doc in articles:
            old = stored.get(doc["_id"])
            owners.append(index)
            if old is None:
                inserted = self._first_version(doc, now)
                requests.append(InsertOne(inserted))
                planned[index], versions[index] = "inserted", 1
                stored_docs[index] = inserted
            elif old.get("content_hash") == doc["content_hash"] or _stale(doc, old):
                requests.append(UpdateOne({"_id": doc["_id"]}, {"$max": {"last_seen_at": now}}))
                if old.get("content_hash") == doc["content_hash"]:
                    planned[index], versions[index] = "unchanged", old.get("revision") or 1
                else:
                    planned[index] = "stale"
            else:
                revision = old.get("revision")
                revisions.append(_revision_upsert(old, now))
                fields = {k: v for k, v in doc.items() if k != "_id"}
                fields.update(
                    revision=(revision or 1) + 1, extractor=self.extractor, last_seen_at=now
                )
                versions[index] = (revision or 1) + 1
                stored_docs[index] = {
                    "_id": doc["_id"],
                    **fields,
                    "first_seen_at": old.get("first_seen_at") or now,
                }
                requests.append(
                    UpdateOne(
                        {
                            "_id": doc["_id"],
                            "content_hash": old.get("content_hash"),
                            "revision": revision,
                        },
                        {
                            "$set": fields,
                            "$setOnInsert": {"first_seen_at": old.get("first_seen_at") or now},
                        },
                        upsert=True,  # a moved condition becomes a duplicate-key error: a race
                    )
                )
                planned[index] = "updated"
        if revisions:
            errors = _bulk(self.revisions, revisions)
            for failed in errors.values():
                if failed.get("code") != DUPLICATE_KEY:  # already recorded by a rival or a retry
                    raise TransientMongoError(f"revision write failed: {failed.get('errmsg')}")
            report.revisions += len(revisions) - len(errors)
        errors = _bulk(self.articles, requests)
        redo: list[int] = []
        recovered: list[tuple[int, Document]] = []
        for position, (index, doc) in enumerate(articles):
            error = errors.get(position)
            if error is None:
                report.outcomes[index] = planned[index]
                if index in stored_docs:
                    report.stored[index] = stored_docs[index]
                if index in recovering:
                    recovered.append((index, doc))
            elif error.get("code") == DUPLICATE_KEY:
                redo.append(index)
            else:
                report.outcomes[index] = StoreWriteError(str(error.get("errmsg")))
        written = {
            index: versions[index]
            for index, _ in articles
            if index in pages and index in versions and report.outcomes.get(index) == planned[index]
        }
        self._write_pages(written, pages, report)
        self._recovered(recovered, report)
        return redo

    def _write_pages(
        self, written: dict[int, int], pages: dict[int, Document], report: WriteReport
    ) -> None:
        """Keep the raw page of each version just written (or re-fetched unchanged: a version
        stored before the archive existed, or whose page a failed attempt did not write, gets
        it then). Written after its article, so a batch retried after a failure in between
        finds the article ``unchanged`` and writes the page of that same version; one page per
        version (``$setOnInsert``: the first response that produced it)."""
        if not written:
            return
        order = sorted(written)
        requests = [
            UpdateOne(
                {"article_id": pages[index]["article_id"], "revision": written[index]},
                {"$setOnInsert": {**pages[index], "revision": written[index]}},
                upsert=True,
            )
            for index in order
        ]
        errors, inserted = _bulk_upserting(self.pages, requests)
        report.pages += inserted
        for position, index in enumerate(order):
            error = errors.get(position)
            if error is not None and error.get("code") != DUPLICATE_KEY:  # not a rival's write
                report.outcomes[index] = StoreWriteError(f"raw page refused: {error.get('errmsg')}")

    def _write_failures(
        self, failures: list[tuple[int, Document]], report: WriteReport, now: datetime
    ) -> list[int]:
        for _, doc in failures:
            self.known.add(doc["url"], doc.get("article_id"))
        requests = [_failure_upsert(doc, now) for _, doc in failures]
        errors = _bulk(self.failures, requests)
        redo: list[int] = []
        for position, (index, doc) in enumerate(failures):
            error = errors.get(position)
            if error is None:
                report.outcomes[index] = "retry" if doc.get("retry_at") else "failure"
            elif error.get("code") == DUPLICATE_KEY:  # two workers upserted one URL at once
                redo.append(index)
            else:
                report.outcomes[index] = StoreWriteError(str(error.get("errmsg")))
        return redo

    def _write_settled(self, settled: list[tuple[int, Document]], report: WriteReport) -> None:
        """Retries that answered: their ``retry`` goes, and a document that held nothing else."""
        urls = [doc["url"] for _, doc in settled]
        self.failures.bulk_write(
            [
                DeleteMany({"url": {"$in": urls}, "attempts": 0}),
                UpdateMany({"url": {"$in": urls}}, {"$unset": {"retry": ""}}),
            ],
            ordered=True,
        )
        for index, _ in settled:
            report.outcomes[index] = "settled"


def _failure_upsert(doc: Document, now: datetime) -> UpdateOne:
    """A final failure (see the module docstring), or a failed attempt whose retry is due at
    ``retry_at``."""
    facts = {k: doc[k] for k in ("reason", "detail", "status")}
    if doc.get("retry_at"):
        return UpdateOne(
            {"url": doc["url"]},
            {
                "$set": {
                    "retry": {
                        "at": doc["retry_at"],
                        "attempts": doc["attempts"],
                        "request": doc["retry_request"],
                        **facts,
                    }
                },
                "$setOnInsert": {
                    **facts,
                    "article_id": doc["article_id"],
                    "attempts": 0,
                    "first_failed_at": now,
                },
            },
            upsert=True,
        )
    return UpdateOne(
        {"url": doc["url"]},
        {
            "$inc": {"attempts": doc["attempts"]},
            "$set": {**facts, "article_id": doc["article_id"], "last_failed_at": now},
            "$unset": {"retry": ""},
            "$setOnInsert": {"first_failed_at": now},
        },
        upsert=True,
    )


def _stale(doc: Document, old: Document) -> bool:
    new, stored = doc.get("modified_at"), old.get("modified_at")
    return isinstance(new, datetime) and isinstance(stored, datetime) and new < stored


def _revision_upsert(old: Document, now: datetime) -> UpdateOne:
    revision = old.get("revision") or 1
    fields = {k: v for k, v in old.items() if k not in REVISION_DROPPED}
    fields.update(article_id=old["_id"], revision=revision, replaced_at=now)
    return UpdateOne(
        {"article_id": old["_id"], "revision": revision}, {"$setOnInsert": fields}, upsert=True
    )


def _bulk(collection: Any, requests: list[Any]) -> dict[int, dict[str, Any]]:
    """Run an unordered bulk write; the per-operation errors by index (transient ones raise)."""
    return _bulk_upserting(collection, requests)[0]


def _bulk_upserting(collection: Any, requests: list[Any]) -> tuple[dict[int, dict[str, Any]], int]:
    """``_bulk``, and how many documents its upserts inserted."""
    errors, upserted = _bulk_upserted(collection, requests)
    return errors, len(upserted)


def _bulk_upserted(
    collection: Any, requests: list[Any]
) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """``_bulk``, and the positions of the requests whose upsert inserted a document."""
    if not requests:
        return {}, set()
    try:
        result = collection.bulk_write(requests, ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise TransientMongoError(str(exc.details["writeConcernErrors"])) from exc
        errors = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        if any(e.get("code") in mongo.TRANSIENT_CODES for e in errors.values()):
            raise TransientMongoError(str(exc)) from exc
        return errors, {int(u["index"]) for u in exc.details.get("upserted", [])}
    return {}, {int(position) for position in result.upserted_ids}


def _bulk_deleted(collection: Any, requests: list[Any]) -> int:
    result = collection.bulk_write(requests, ordered=False)
    return int(result.deleted_count)


class StorePipeline:
    """Writes articles and failures to MongoDB in acknowledged batches."""

    def __init__(
        self,
        crawler: Crawler,
        stats: StatsCollector,
        config: StoreConfig,
        mongo_config: MongoConfig,
    ) -> None:
        self.crawler = crawler
        self.stats = stats
        self.config = config
        self.mongo_config = mongo_config
        self._writer: MongoWriter | None = None
        # One batch at a time, in arrival order (the shared batcher, crawler.batch).
        self._batcher: Batcher[Any, None] = Batcher(
            self._write_batch,
            size=config.batch_size,
            interval=config.flush_interval,
            concurrency=1,
            name="store-flush",
            idle=lambda: nothing_else_coming(crawler),
        )
        park(crawler, self._batcher)
        self._closing_at: float | None = None
        self._shutdown = mongo.ShutdownClock.of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        store = cls(
            crawler,
            crawler.stats,
            StoreConfig.from_settings(crawler.settings),
            MongoConfig.from_settings(crawler.settings),
        )
        crawler.signals.connect(store.retry_state, signal=frontier_signals.retry_state)
        crawler.signals.connect(store.run_entered, signal=frontier_signals.run_entered)
        return store

    # --- lifecycle --------------------------------------------------------------------------

    async def open_spider(self) -> None:
        conn = mongo.acquire(self.crawler, self.mongo_config)
        self._writer = MongoWriter(conn.db, extractor_version(self.crawler.settings))
        end = time.monotonic() + self.mongo_config.retry_deadline
        await mongo.retry(
            self._writer.ensure_indexes, what="store index creation", deadline=lambda: end
        )
        await spill.replay(Path(self.config.spill_dir), self._write_spilled, self.stats)

    async def close_spider(self) -> None:
        """Flush everything (through an outage, up to the close deadline), then let go."""
        self._closing_at = time.monotonic()
        await self._batcher.close()
        if self._writer is not None:
            self._writer = None
            await mongo.release(self.crawler)

    # --- items ------------------------------------------------------------------------------

    async def process_item(self, item: Any) -> Any:
        if not (is_article(item) or is_failure(item) or isinstance(item, RetrySettled)):
            return item
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        written = self._batcher.submit(item)
        if self._closing_at is not None:
            self._batcher.flush()
        await written
        if is_article(item):
            # Its raw page is in ``pages`` now: let go of the body (the dedupe stage keeps
            # recent items for a while, and a page can be ~100 KB).
            item.fetched = None
        return item

    def run_entered(self, run_id: str) -> None:
        """The worker entered a run: which URLs have failures is read again (``failed``)."""
        if self._writer is not None:
            self._writer.known.expire()

    async def retry_state(self, change: PageFailure | RetrySettled) -> None:
        """The retry middleware's record of a pending or settled retry (``retry_state``):
        returns once it is written (or spilled)."""
        if self._writer is not None:
            await self.process_item(change)

    # --- flushing ---------------------------------------------------------------------------

    def _deadline(self, started: float) -> float:
        end = started + self.mongo_config.retry_deadline
        if self._closing_at is not None:
            end = min(end, self._closing_at + self.config.close_deadline)
        return min(end, self._shutdown.deadline())  # SIGTERM: before close_spider is called

    def _on_retry(self, _exc: BaseException) -> None:
        self.stats.inc_value("tass/store/retries")

    async def _write_batch(self, items: list[Any]) -> list[BaseException | None]:
        """Write one batch; each item's outcome (None: written), in order."""
        writer = self._writer
        assert writer is not None
        results: list[BaseException | None] = [None] * len(items)
        positions: list[int] = []
        ops: list[_Op] = []
        for position, item in enumerate(items):
            try:
                ops.append(_op_for(item))
            except Exception as exc:
                self.stats.inc_value("tass/store/errors")
                logger.error("Cannot store %r: %s", item, exc)
                results[position] = StoreWriteError(f"cannot encode the item: {exc}")
                continue
            positions.append(position)
        if not ops:
            return results
        self.stats.inc_value("tass/store/batches")
        started = time.monotonic()
        try:
            report = await mongo.retry(
                lambda: writer.write(ops),
                what=f"store batch of {len(ops)}",
                deadline=lambda: self._deadline(started),
                on_retry=self._on_retry,
            )
        except Exception as exc:
            error = await self._spill(ops, exc)
            for position in positions:
                results[position] = error
            return results
        self._count(ops, report)
        await self._stored(report)
        for index, position in enumerate(positions):
            outcome = report.outcomes[index]
            if isinstance(outcome, StoreWriteError):
                results[position] = outcome
            elif outcome in _AS_IS and isinstance(items[position], ArticleItem):
                items[position].stored_as_is = True
        return results

    def _count(self, ops: list[_Op], report: WriteReport) -> None:
        """Stats for a written batch; an op MongoDB refused is logged."""
        counts: dict[str, int] = {}
        for index, outcome in report.outcomes.items():
            if isinstance(outcome, StoreWriteError):
                self.stats.inc_value("tass/store/errors")
                logger.error("MongoDB refused %s: %s", ops[index].doc.get("url"), outcome)
                continue
            key: str = _STAT_OF.get(outcome, outcome)
            counts[key] = counts.get(key, 0) + 1
            if outcome == "stale":
                counts["unchanged"] = counts.get("unchanged", 0) + 1
        counts.update(
            revisions=report.revisions,
            recovered=report.recovered,
            conflicts=report.conflicts,
            pages=report.pages,
        )
        for key, count in counts.items():
            if count:
                self.stats.inc_value(f"tass/store/{key}", count)

    async def _stored(self, report: WriteReport) -> None:
        """Tell ``article_stored``'s listeners (the items feed) of the new versions written,
        before the batch's items are acknowledged."""
        articles = [
            StoredArticle("new" if doc["revision"] == 1 else "revised", doc)
            for index, doc in sorted(report.stored.items())
            if not isinstance(report.outcomes.get(index), StoreWriteError)
        ]
        if articles:
            await self.crawler.signals.send_catch_log_async(
                signal=article_stored, articles=articles
            )

    async def _write_spilled(self, records: list[spill.Record]) -> list[spill.Record]:
        """Write spilled records as one batch; the ones MongoDB refused for good."""
        writer = self._writer
        assert writer is not None
        refused: list[spill.Record] = []
        kept: list[spill.Record] = []
        ops: list[_Op] = []
        for record in records:
            try:
                ops.append(_op_of(record.collection, record.doc, record.page))
                kept.append(record)
            except Exception as exc:
                logger.error("Cannot store spilled %s: %s", record.doc.get("url"), exc)
                refused.append(record)
        end = time.monotonic() + self.mongo_config.retry_deadline
        report = await mongo.retry(
            lambda: writer.write(ops),
            what=f"spilled batch of {len(ops)}",
            deadline=lambda: end,
            on_retry=self._on_retry,
        )
        self._count(ops, report)
        await self._stored(report)
        errors = [r for i, r in enumerate(kept) if isinstance(report.outcomes[i], StoreWriteError)]
        return refused + errors

    async def _spill(self, ops: list[_Op], exc: BaseException) -> StoreUnavailable:
        folder = Path(self.config.spill_dir)
        records = [spill.Record(_collection_of(op), op.doc, op.page) for op in ops]
        try:
            path = await asyncio.to_thread(spill.write, folder, records)
            where = f"spilled to {path}"
            self.stats.inc_value("tass/store/spilled", len(ops))
        except OSError as spill_error:
            where = f"LOST (spill to {folder} failed: {spill_error})"
            self.stats.inc_value("tass/store/lost", len(ops))
        logger.error("STORE: %d items NOT written to MongoDB (%s): %s", len(ops), where, exc)
        return StoreUnavailable(f"not stored ({where}): {exc}")


_STAT_OF = {"failure": "failures", "retry": "pending_retries", "settled": "settled_retries"}


def _collection_of(op: _Op) -> str:
    return mongo.ARTICLES if op.kind == "article" else mongo.FAILURES
