"""The re-extraction stage: the store's place when ``scrapy reparse`` runs archived pages again.

``scrapy reparse`` (``crawler.reparse``) runs the crawl's own spider callback and the crawl's
own stages (``ITEM_PIPELINES``) on pages read back from the raw archive, with this stage in
place of ``pipelines.store.StorePipeline`` (``TASS_REPARSE_REPLACES``). A re-extraction is not
an edit by the site, so it writes differently from the store:

- only the fields whose stored value differs from the new extraction are set (``$set``), with
  ``extractor`` (the code that produced them, ``crawler.version``) and ``reextracted_at``;
  a document whose fields all come out the same is not written at all;
- ``revision``, ``first_seen_at`` and ``last_seen_at`` stay, and no ``revisions`` document is
  written. ``content_hash`` follows the new text, so the next crawl compares the site against
  what the current code makes of it and does not take a re-extraction for an edit;
- the new fields are compared with the stored document the reparse worker read with the page
  (``FetchedPage.stored``; read here when it was not), and the update is conditioned on the
  stored ``revision`` being the archived page's and on the ``content_hash`` read: a crawl that
  stores a newer version meanwhile wins (``superseded``), as that version was extracted from a
  newer page. (A newer version stored between that read and a comparison that finds nothing
  to change is counted ``unchanged``: nothing is written either way.)
- an item whose page no longer extracts (a ``PageFailure`` from the spider or validate) leaves
  the document alone and is counted by reason; so is a page that now names another article.

The archived pages themselves are never changed. Writes go in batches (``TASS_STORE_BATCH_SIZE``
/ ``TASS_STORE_FLUSH_INTERVAL``, the shared batcher) through ``mongo.retry``; a batch that
outlives MongoDB fails its items, and their chunk is done again later.

Stats (per process; the reparse worker adds them to the job): ``tass/reparse/articles``,
``updated``, ``unchanged``, ``superseded``, ``missing`` (no document any more),
``changed/<field>`` (``minhash`` and ``minhash_bands`` are rewritten with the body but not
counted), ``failed/<reason>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Self

import bson
from bson.codec_options import CodecOptions
from itemadapter import ItemAdapter
from pymongo import UpdateOne
from pymongo.collection import Collection
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from crawler import mongo
from crawler.batch import Batcher
from crawler.items import FetchedPage, PageFailure
from crawler.mongo import Document, MongoConfig
from crawler.version import extractor_version
from pipelines.common import is_article, is_failure, nothing_else_coming, park, utcnow
from pipelines.schema import article_doc
from pipelines.store import StoreConfig

logger = logging.getLogger(__name__)

QUIET_FIELDS = frozenset({"minhash", "minhash_bands"})
"""Fields rewritten with the body but left out of the per-field counts."""

_OPTIONS: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)
Outcome = Literal["updated", "unchanged", "superseded", "missing"]
Change = tuple[Document, int, Mapping[str, Any] | None]
"""A re-extracted ``article_doc``, the revision of its archived page, and the stored document
as the reparse worker read it with the page (``FetchedPage.stored``; None: not read)."""


@dataclass(frozen=True, slots=True)
class Result:
    """What the re-extraction of one article did, and to which fields."""

    outcome: Outcome
    changed: tuple[str, ...] = ()


def stored_form(doc: Document) -> Document:
    """``doc`` as MongoDB gives it back (datetimes at millisecond precision, aware, UTC)."""
    return bson.decode(bson.encode(doc), codec_options=_OPTIONS)


def changed_fields(new: Document, old: Mapping[str, Any]) -> list[str]:
    """The fields of ``new`` (an ``article_doc``) whose stored value in ``old`` differs.

    A value equal to the stored one as it is stays equal in MongoDB's form, so only the others
    go through BSON (``stored_form``: a datetime may still come out equal at milliseconds)."""
    differ = {k: v for k, v in new.items() if k != "_id" and old.get(k, ...) != v}
    if not differ:
        return []
    fresh = stored_form(differ)
    return sorted(k for k, v in fresh.items() if old.get(k, ...) != v)


class ReextractWriter:
    """The blocking half: pymongo calls, run in a thread of their own."""

    def __init__(self, articles: Collection[Document], extractor: str) -> None:
        self.articles = articles
        self.extractor = extractor

    def write(self, docs: list[Change], now: datetime) -> list[Result]:
        """Apply each ``(article_doc, archived revision, stored document)``; one result each,
        in order. A stored document not given (None) is read here."""
        unknown = [doc["_id"] for doc, _, known in docs if known is None]
        read = (
            {d["_id"]: d for d in self.articles.find({"_id": {"$in": unknown}})} if unknown else {}
        )
        results: list[Result] = []
        updates: list[UpdateOne] = []
        for doc, revision, known in docs:
            old = known if known is not None else read.get(doc["_id"])
            if old is None:
                results.append(Result("missing"))
                continue
            if (old.get("revision") or 1) != revision:
                results.append(Result("superseded"))
                continue
            changed = changed_fields(doc, old)
            if not changed:
                results.append(Result("unchanged"))
                continue
            fields = {k: doc[k] for k in changed}
            fields.update(extractor=self.extractor, reextracted_at=now)
            condition = {
                "_id": doc["_id"],
                "revision": old.get("revision"),
                "content_hash": old.get("content_hash"),
            }
            updates.append(UpdateOne(condition, {"$set": fields}))
            results.append(Result("updated", tuple(changed)))
        if updates:
            matched = self.articles.bulk_write(updates, ordered=False).matched_count
            if matched < len(updates):
                self._superseded(results, docs, now)
        return results

    def _superseded(self, results: list[Result], docs: list[Change], now: datetime) -> None:
        """Mark the updates whose condition a rival write moved (they were not applied)."""
        wanted = [doc["_id"] for (doc, _, _), r in zip(docs, results, strict=True) if r.changed]
        applied = {
            d["_id"]
            for d in self.articles.find({"_id": {"$in": wanted}, "reextracted_at": now}, {"_id": 1})
        }
        for position, ((doc, _, _), result) in enumerate(zip(docs, results, strict=True)):
            if result.changed and doc["_id"] not in applied:
                results[position] = Result("superseded")


class ReextractPipeline:
    """Writes what a re-extraction changes, in place of the store (module docstring)."""

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
        self._writer: ReextractWriter | None = None
        self._batcher: Batcher[Change, Result] = Batcher(
            self._write_batch,
            size=config.batch_size,
            interval=config.flush_interval,
            concurrency=1,
            name="reextract-flush",
            idle=lambda: nothing_else_coming(crawler),
        )
        park(crawler, self._batcher)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(
            crawler,
            crawler.stats,
            StoreConfig.from_settings(crawler.settings),
            MongoConfig.from_settings(crawler.settings),
        )

    async def open_spider(self) -> None:
        conn = mongo.acquire(self.crawler, self.mongo_config)
        self._writer = ReextractWriter(
            conn.db[mongo.ARTICLES], extractor_version(self.crawler.settings)
        )

    async def close_spider(self) -> None:
        await self._batcher.close()
        if self._writer is not None:
            self._writer = None
            await mongo.release(self.crawler)

    def _count(self, name: str, count: int = 1) -> None:
        self.stats.inc_value(f"tass/reparse/{name}", count)

    async def process_item(self, item: Any) -> Any:
        if is_failure(item):
            self._count("articles")
            self._count(f"failed/{item.reason}")
            return item
        if not is_article(item):
            return item
        adapter = ItemAdapter(item)
        page = adapter.get("fetched")
        if not isinstance(page, FetchedPage) or page.revision is None:
            raise ValueError(f"{adapter.get('url')}: re-extracted without its archived page")
        self._count("articles")
        if adapter["id"] != page.article_id:
            reason = "reparse:id_changed"
            self._count(f"failed/{reason}")
            return PageFailure(
                url=page.url,
                reason=reason,
                detail=f"the page archived for {page.article_id} now extracts as {adapter['id']}",
                status=page.status,
                article_id=page.article_id,
            )
        known = page.stored.document if page.stored is not None else None
        result = await self._batcher.submit((article_doc(item), page.revision, known))
        adapter["fetched"] = None  # done with the page (the dedupe stage keeps recent items)
        self._count(result.outcome)
        for name in result.changed:
            if name not in QUIET_FIELDS:
                self._count(f"changed/{name}")
        return item

    async def _write_batch(self, batch: list[Change]) -> list[Result]:
        writer = self._writer
        assert writer is not None
        end = time.monotonic() + self.mongo_config.retry_deadline
        now = utcnow()
        return await mongo.retry(
            lambda: writer.write(batch, now),
            what=f"re-extraction batch of {len(batch)}",
            deadline=lambda: end,
        )
