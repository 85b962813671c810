"""The dedupe stage: fingerprint each article and mark near-duplicate republications.

Every ``ArticleItem`` gets ``content_hash`` (SHA-256 of title, lead and body; the store uses it
to tell an edit from a re-fetch) and ``simhash`` (64-bit SimHash of the body over word
3-shingles, signed int64). Exact duplicates by id are the store's business (one document per
``_id``); this stage looks for the same story republished under another id.

Candidates come from MongoDB in one indexed query on the stored ``simhash_bands`` (four 16-bit
bands, so every stored article within Hamming distance 3 is found, whatever the number of
workers), plus the articles this process saw recently and may not have stored yet. A candidate
within ``TASS_DEDUPE_MAX_DISTANCE`` bits is a match. Each match stands for its *original* (its
``duplicate_of``, or itself); the original of the group is the one published first (ties: the
smaller id):

- the incoming article is later: it gets ``duplicate_of = <original id>`` and is still stored;
- the incoming article is earlier: it stays an original, and this stage re-points the stored
  group at it directly (``update_many`` on ``_id`` and on ``duplicate_of``), as well as recent
  items still waiting in this process's store buffer. The store writes the incoming article a
  moment later, so for that moment copies point at an id that is not stored yet.

No chains: an article that becomes a copy hands its own copies to the new original.

Limits: two near-duplicates processed at the same instant by *different* workers both see
nothing and both stay originals; a later re-fetch of either repairs it. A distance above 3 is
allowed but only found when the fingerprints happen to share a band (logged at start).

``TASS_DEDUPE_NEAR_ENABLED=false`` keeps the hashing and skips the matching (no MongoDB).
pymongo calls run in a thread and are retried through an outage with backoff for up to
``TASS_MONGO_RETRY_DEADLINE``; after that the item passes unmatched (logged, counted) rather
than being dropped. Stats: ``tass/dedupe/hashed``, ``tass/dedupe/near_duplicates``,
``tass/dedupe/reassigned``, ``tass/dedupe/retries``, ``tass/dedupe/unchecked``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from itemadapter import ItemAdapter
from pymongo.collection import Collection
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from pipelines import defaults, mongo
from pipelines.common import is_article
from pipelines.mongo import Document, MongoConfig, RetryDeadlineExceeded
from pipelines.simhash import GUARANTEED_DISTANCE, bands, content_hash, distance, simhash

logger = logging.getLogger(__name__)

_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DedupeConfig:
    """Whether to look for near-duplicates, and how near counts."""

    near_enabled: bool = True
    max_distance: int = defaults.DEDUPE_MAX_DISTANCE
    recent_size: int = defaults.DEDUPE_RECENT_SIZE

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        enabled = settings.getbool("TASS_DEDUPE_NEAR_ENABLED", True)
        max_distance = settings.getint("TASS_DEDUPE_MAX_DISTANCE", defaults.DEDUPE_MAX_DISTANCE)
        if not 0 <= max_distance <= 64:
            raise ValueError(f"TASS_DEDUPE_MAX_DISTANCE must be 0..64 bits, got {max_distance}")
        return cls(near_enabled=enabled, max_distance=max_distance)


@dataclass(slots=True)
class _Seen:
    """An article matched against: from MongoDB or this process's recent items."""

    id: int
    simhash: int
    published_at: datetime | None
    duplicate_of: int | None
    adapter: ItemAdapter | None = None

    @property
    def root(self) -> int:
        return self.duplicate_of or self.id


def _order(published_at: datetime | None, aid: int) -> tuple[datetime, int]:
    return (published_at or _NEVER, aid)


class DedupePipeline:
    """Sets ``content_hash``/``simhash`` and ``duplicate_of`` on articles."""

    def __init__(
        self,
        crawler: Crawler,
        stats: StatsCollector,
        config: DedupeConfig,
        mongo_config: MongoConfig | None,
    ) -> None:
        self.crawler = crawler
        self.stats = stats
        self.config = config
        self.mongo_config = mongo_config
        self._articles: Collection[Document] | None = None
        self._recent: OrderedDict[int, _Seen] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        config = DedupeConfig.from_settings(crawler.settings)
        mongo_config = MongoConfig.from_settings(crawler.settings) if config.near_enabled else None
        return cls(crawler, crawler.stats, config, mongo_config)

    async def open_spider(self) -> None:
        if self.mongo_config is None:
            logger.info("Near-duplicate detection is off (TASS_DEDUPE_NEAR_ENABLED=false)")
            return
        if self.config.max_distance > GUARANTEED_DISTANCE:
            logger.warning(
                "TASS_DEDUPE_MAX_DISTANCE=%d: only distances up to %d are always found",
                self.config.max_distance,
                GUARANTEED_DISTANCE,
            )
        conn = mongo.acquire(self.crawler, self.mongo_config)
        self._articles = conn.db[defaults.ARTICLES]

    async def close_spider(self) -> None:
        if self._articles is not None:
            self._articles = None
            await mongo.release(self.crawler)

    async def process_item(self, item: Any) -> Any:
        if not is_article(item):
            return item
        adapter = ItemAdapter(item)
        adapter["content_hash"] = content_hash(
            adapter.get("title") or "", adapter.get("lead"), adapter.get("body") or ""
        )
        fingerprint = simhash(adapter.get("body") or "")
        adapter["simhash"] = fingerprint
        self.stats.inc_value("tass/dedupe/hashed")
        if self._articles is None:
            return item
        aid: int = adapter["id"]
        published: datetime | None = adapter.get("published_at")
        adapter["duplicate_of"] = None
        this = _Seen(aid, fingerprint, published, None, adapter)
        self._remember(this)
        try:
            await self._match(this)
        except RetryDeadlineExceeded as exc:
            self.stats.inc_value("tass/dedupe/unchecked")
            logger.error("Near-duplicate check skipped for %s: %s", adapter.get("url"), exc)
        return item

    def _remember(self, seen: _Seen) -> None:
        self._recent[seen.id] = seen
        self._recent.move_to_end(seen.id)
        while len(self._recent) > self.config.recent_size:
            self._recent.popitem(last=False)

    def _deadline(self) -> float:
        assert self.mongo_config is not None
        return time.monotonic() + self.mongo_config.retry_deadline

    def _on_retry(self, _exc: BaseException) -> None:
        self.stats.inc_value("tass/dedupe/retries")

    async def _call(self, what: str, call: Any) -> Any:
        end = self._deadline()
        return await mongo.retry(call, what=what, deadline=lambda: end, on_retry=self._on_retry)

    async def _match(self, this: _Seen) -> None:
        articles = self._articles
        assert articles is not None and this.adapter is not None
        limit = defaults.DEDUPE_CANDIDATE_LIMIT

        def candidates() -> list[Document]:
            query = {"simhash_bands": {"$in": bands(this.simhash)}, "_id": {"$ne": this.id}}
            projection = {"simhash": 1, "published_at": 1, "duplicate_of": 1}
            return list(articles.find(query, projection).limit(limit))

        found: dict[int, _Seen] = {}
        for doc in await self._call("dedupe candidate lookup", candidates):
            if isinstance(doc.get("simhash"), int):
                seen = _Seen(doc["_id"], doc["simhash"], doc.get("published_at"), None)
                seen.duplicate_of = doc.get("duplicate_of")
                found[seen.id] = seen
        for seen in list(self._recent.values()):
            if seen.id != this.id:
                seen.duplicate_of = seen.adapter.get("duplicate_of") if seen.adapter else None
                found[seen.id] = seen
        matches = [
            s
            for s in found.values()
            if distance(s.simhash, this.simhash) <= self.config.max_distance
        ]
        if not matches:
            return
        # Each match stands for its original; learn the originals' publication times.
        known = {s.id: s.published_at for s in found.values()}
        roots = {s.root for s in matches} - {this.id}
        missing = [r for r in roots if r not in known]
        if missing:

            def originals() -> list[Document]:
                return list(articles.find({"_id": {"$in": missing}}, {"published_at": 1}))

            for doc in await self._call("dedupe original lookup", originals):
                known[doc["_id"]] = doc.get("published_at")
        if not roots:
            return  # every match already points at this article
        first = min(roots, key=lambda r: _order(known.get(r), r))
        if _order(known.get(first), first) < _order(this.published_at, this.id):
            this.adapter["duplicate_of"] = first
            self.stats.inc_value("tass/dedupe/near_duplicates")
            await self._repoint([this.id], first)
        else:
            await self._repoint(sorted(roots), this.id)

    async def _repoint(self, old_roots: list[int], new_root: int) -> None:
        """Make the originals ``old_roots`` and their copies duplicates of ``new_root``."""
        articles = self._articles
        assert articles is not None
        for seen in self._recent.values():
            if seen.adapter is None or seen.id == new_root:
                continue
            if seen.id in old_roots or seen.adapter.get("duplicate_of") in old_roots:
                seen.adapter["duplicate_of"] = new_root

        def update() -> int:
            moved = articles.update_many(
                {"_id": {"$in": old_roots}}, {"$set": {"duplicate_of": new_root}}
            ).modified_count
            moved += articles.update_many(
                {"duplicate_of": {"$in": old_roots}, "_id": {"$ne": new_root}},
                {"$set": {"duplicate_of": new_root}},
            ).modified_count
            # The new original is nobody's copy (a stale mark would make a cycle).
            articles.update_one(
                {"_id": new_root, "duplicate_of": {"$ne": None}}, {"$set": {"duplicate_of": None}}
            )
            return moved

        moved = await self._call("dedupe re-point", update)
        if moved:
            self.stats.inc_value("tass/dedupe/reassigned", moved)
