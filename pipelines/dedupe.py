"""The dedupe stage: fingerprint each article and mark near-duplicate republications.

Every ``ArticleItem`` gets its fingerprints from ``pipelines.schema.fingerprint``:
``content_hash`` (SHA-256 of title, lead and body; the store uses it to tell an edit from a
re-fetch), ``minhash`` (a 64-value MinHash signature of the body's word 3-shingles,
``pipelines.minhash``) and ``minhash_bands`` (its LSH band keys, which the store writes and
this stage queries). Exact duplicates by id are the store's business (one
document per ``_id``); this stage looks for the same story republished under another id.

Candidates come from MongoDB through the stored ``minhash_bands`` (10 LSH bands of 6 bins: a
stored article of similarity 0.88 shares a band with probability 0.998, one of 0.5 with 0.15,
whatever the number of workers), plus the articles this process saw recently, may not have
stored yet, and share a band with it (the same rule, so whether a copy is found does not depend
on whether its original was stored yet). The recent articles (``DEDUPE_RECENT_SIZE``, 2,048)
are indexed by band key (``pipelines.candidates.RecentWindow``), so only those
sharing a band are compared. The MongoDB look-ups of articles arriving close together go in one
indexed ``$in`` query over all their band keys (``pipelines.candidates.CandidateLookup``: up to
``TASS_DEDUPE_LOOKUP_BATCH_SIZE`` articles or ``TASS_DEDUPE_LOOKUP_INTERVAL`` seconds; each
article's ``process_item`` awaits its batch). A candidate whose estimated Jaccard similarity
(the fraction of equal bins) is at least ``TASS_DEDUPE_MIN_SIMILARITY`` is a match. Each match
stands for its *original* (its ``duplicate_of``, or itself); the original of the group is the
one published first (ties: the smaller id):

- the incoming article is later: it gets ``duplicate_of = <original id>`` and is still stored;
- the incoming article is earlier: it stays an original, and its group is re-pointed at it:
  at once for the articles this process still holds (its recent window: their ``duplicate_of``
  is this stage's field, see ``pipelines.schema``), and for the stored group
  (one ordered bulk write: the old originals by ``_id``, their copies by ``duplicate_of``, and
  the new original's own mark cleared) only once the incoming article is stored itself, at
  its late check below. So the stage never writes ``articles`` ahead of the store, and no
  stored copy ever points at an id that is not stored yet.

No chains: an article that becomes a copy hands its own copies to the new original (the same
two steps).

The late check (Scrapy's ``item_scraped``, after the store wrote the article) first writes the
re-points its first check decided, then matches again. Two near-duplicates deduplicated at the
same moment by *different* workers see
nothing of each other (neither is stored yet), so each article is matched again on
``item_scraped``, once the store has written it: of two such articles, the one stored second
then finds the other and settles the group (counted as ``tass/dedupe/late_matches``). Until
then both are stored as originals. The late checks are batched apart from the first look-ups,
up to ``TASS_DEDUPE_LATE_BATCH_SIZE`` (100, the store's batch) per query: the articles of one
store batch are acknowledged together, so their ``item_scraped`` signals come together and
share one query (measured: with the first look-ups' batches of 20 they took three to five).
That query leaves out the batch's own documents that nobody in it needs: an article whose
store outcome says the stored version is its own (``ArticleItem.stored_as_is``: inserted,
updated or unchanged, not stale) and whose bands meet no other article's of the batch
(``CandidateLookup``'s ``own``). It would only be skipped by its own check, and no other
check of the batch is given it. Why that is exact: the document the query would have found is
this version, unless another worker stored a version since; that one was stored after this
batch, so its own late check finds the batch (the argument above).

The late check is skipped (``tass/dedupe/late_skipped``) for an article whose first look-up
found its own stored document with the same ``content_hash``, signature and ``duplicate_of``,
and whose first check's re-points (written just before) modified no stored document. Why that
is safe: the store then only moves
its ``last_seen_at``, so this pass writes no ``duplicate_of`` that could be stale; and a
near-duplicate Y in another worker that the first look-up (at time q) did not find was stored
after q. If Y's own first look-up started after the earlier version X' of this article was
stored, it found X' (same bands, same signature). Otherwise Y's look-up came before X' was
stored and Y was stored after q, so Y was stored second and its own late check finds X' -
unless Y skipped it, which needs a stored version of Y older than Y's look-up, hence older than
q: the look-up at q found that one. So every such pair is matched by one side, as without the
skip. Nothing cheaper is provable from inside one worker (it cannot know whether another worker
is running), so new and edited articles are always re-checked, a store batch's worth per query.

A page that ``scrapy reparse`` re-extracts carries what ``articles`` holds of its version
(``FetchedPage.stored``). When its ``content_hash`` and signature come out as stored
(``schema.fingerprint_as_stored``, which takes the stored signature instead of computing it
when the text and the code are the same), the article keeps its stored ``duplicate_of`` and
is neither looked up nor checked late (``tass/dedupe/as_stored``); it is still remembered
with its bands, so the pages re-extracted with it match it and re-point it as they would.
Why that is safe: matching depends on the signatures alone, and this one is what the stored
group was settled with: of each pair of near-duplicates, the one stored second found the
other (the argument above), and a pair whose other side changes now is matched again by that
side's own checks, as any changed article is. So a reparse does not decide again the group of
an article whose text did not change: a new ``TASS_DEDUPE_MIN_SIMILARITY`` applies to the
articles it changes, and to the crawl.

Limits: banding is probabilistic. A stored copy of similarity ``s`` is missed with probability
``(1 - s**6)**10`` (0.2 % at 0.88, 5 % at 0.8, 14 % at 0.75), so lowering the threshold far
below the copies' similarity does not find proportionally more of them. A batched query returns
at most ``DEDUPE_CANDIDATE_LIMIT`` documents per article in it, and each article keeps at most
that many.

``TASS_DEDUPE_NEAR_ENABLED=false`` keeps the hashing and skips the matching (no MongoDB).
pymongo calls run in a thread and are retried through an outage with backoff for up to
``TASS_MONGO_RETRY_DEADLINE``; after that the item passes unmatched (logged, counted) rather
than being dropped. Stats: ``tass/dedupe/hashed``, ``tass/dedupe/near_duplicates``,
``tass/dedupe/reassigned`` (stored documents a re-point changed: copies moved to their new
original, and a new original's own stale mark cleared), ``tass/dedupe/late_matches``,
``tass/dedupe/late_skipped``, ``tass/dedupe/as_stored``, ``tass/dedupe/own_left_out`` (own
documents a late check's query left out),
``tass/dedupe/lookups`` (candidate queries sent), ``tass/dedupe/retries``,
``tass/dedupe/unchecked``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from itemadapter import ItemAdapter
from pymongo import UpdateMany, UpdateOne
from pymongo.collection import Collection
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from crawler import defaults, mongo
from crawler.items import FetchedPage
from crawler.mongo import Document, MongoConfig, RetryDeadlineExceeded
from crawler.version import extractor_version
from pipelines.candidates import CandidateLookup, RecentWindow
from pipelines.common import is_article, nothing_else_coming, park
from pipelines.minhash import BINS, bands, similarity
from pipelines.schema import CANDIDATE_FIELDS, fingerprint, fingerprint_as_stored

logger = logging.getLogger(__name__)

_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DedupeConfig:
    """Whether to look for near-duplicates, and how near counts."""

    near_enabled: bool = True
    min_similarity: float = defaults.TASS_DEDUPE_MIN_SIMILARITY
    recent_size: int = defaults.DEDUPE_RECENT_SIZE
    lookup_batch_size: int = defaults.TASS_DEDUPE_LOOKUP_BATCH_SIZE
    lookup_interval: float = defaults.TASS_DEDUPE_LOOKUP_INTERVAL
    late_batch_size: int = defaults.TASS_DEDUPE_LATE_BATCH_SIZE

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        enabled = settings.getbool("TASS_DEDUPE_NEAR_ENABLED", defaults.TASS_DEDUPE_NEAR_ENABLED)
        minimum = settings.getfloat(
            "TASS_DEDUPE_MIN_SIMILARITY", defaults.TASS_DEDUPE_MIN_SIMILARITY
        )
        if not 0 < minimum <= 1:
            raise ValueError(f"TASS_DEDUPE_MIN_SIMILARITY must be in (0, 1], got {minimum}")
        batch = settings.getint(
            "TASS_DEDUPE_LOOKUP_BATCH_SIZE", defaults.TASS_DEDUPE_LOOKUP_BATCH_SIZE
        )
        if batch <= 0:
            raise ValueError(f"TASS_DEDUPE_LOOKUP_BATCH_SIZE must be > 0, got {batch}")
        interval = settings.getfloat(
            "TASS_DEDUPE_LOOKUP_INTERVAL", defaults.TASS_DEDUPE_LOOKUP_INTERVAL
        )
        if not interval > 0:
            raise ValueError(f"TASS_DEDUPE_LOOKUP_INTERVAL must be > 0 seconds, got {interval}")
        late = settings.getint("TASS_DEDUPE_LATE_BATCH_SIZE", defaults.TASS_DEDUPE_LATE_BATCH_SIZE)
        if late <= 0:
            raise ValueError(f"TASS_DEDUPE_LATE_BATCH_SIZE must be > 0, got {late}")
        return cls(
            near_enabled=enabled,
            min_similarity=minimum,
            lookup_batch_size=batch,
            lookup_interval=interval,
            late_batch_size=late,
        )


@dataclass(slots=True)
class _Seen:
    """An article matched against: from MongoDB or this process's recent items."""

    id: int
    minhash: list[int]
    published_at: datetime | None
    duplicate_of: int | None
    adapter: ItemAdapter | None = None
    bands: frozenset[int] = frozenset()
    pending: list[tuple[list[int], int]] = field(default_factory=list)
    """Re-points its first check decided, for stored documents: written after its store."""
    wrote: bool = False  # a check re-pointed stored documents for it
    settled: bool = False  # its first check proved the late check needless (module docstring)

    @property
    def root(self) -> int:
        return self.duplicate_of or self.id


def _order(published_at: datetime | None, aid: int) -> tuple[datetime, int]:
    return (published_at or _NEVER, aid)


def _settled(this: _Seen, docs: list[Document]) -> bool:
    """Whether the late check of ``this`` is needless (module docstring): its first check
    modified no stored document, and ``docs`` hold its own document with the same content,
    signature and ``duplicate_of`` (so the store will only move its ``last_seen_at``)."""
    if this.wrote or this.adapter is None:
        return False
    digest, duplicate_of = this.adapter.get("content_hash"), this.adapter.get("duplicate_of")
    return any(
        doc["_id"] == this.id
        and doc.get("content_hash") == digest
        and doc.get("minhash") == this.minhash
        and doc.get("duplicate_of") == duplicate_of
        for doc in docs
    )


class DedupePipeline:
    """Sets ``content_hash``/``minhash`` and ``duplicate_of`` on articles."""

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
        self._recent: RecentWindow[_Seen] = RecentWindow(config.recent_size)
        self._lookup: CandidateLookup | None = None
        self._late: CandidateLookup | None = None  # the late checks: a store batch per query
        self._shutdown = mongo.ShutdownClock.of(crawler)
        self._version: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        config = DedupeConfig.from_settings(crawler.settings)
        mongo_config = MongoConfig.from_settings(crawler.settings) if config.near_enabled else None
        pipeline = cls(crawler, crawler.stats, config, mongo_config)
        if config.near_enabled:
            crawler.signals.connect(pipeline.item_scraped, signal=signals.item_scraped)
        return pipeline

    async def open_spider(self) -> None:
        if self.mongo_config is None:
            logger.info("Near-duplicate detection is off (TASS_DEDUPE_NEAR_ENABLED=false)")
            return
        conn = mongo.acquire(self.crawler, self.mongo_config)
        self._articles = conn.db[mongo.ARTICLES]

        def idle() -> bool:
            return nothing_else_coming(self.crawler)

        self._lookup = CandidateLookup(
            self._fetch_candidates,
            batch_size=self.config.lookup_batch_size,
            interval=self.config.lookup_interval,
            limit=defaults.DEDUPE_CANDIDATE_LIMIT,
            idle=idle,
        )
        self._late = CandidateLookup(
            self._fetch_candidates,
            batch_size=self.config.late_batch_size,
            interval=self.config.lookup_interval,
            limit=defaults.DEDUPE_CANDIDATE_LIMIT,
            idle=idle,
        )
        park(self.crawler, self._lookup)
        park(self.crawler, self._late)

    async def close_spider(self) -> None:
        for lookup in (self._lookup, self._late):
            if lookup is not None:
                await lookup.close()
        if self._articles is not None:
            self._articles = None
            await mongo.release(self.crawler)

    async def process_item(self, item: Any) -> Any:
        if not is_article(item):
            return item
        adapter = ItemAdapter(item)
        fetched = adapter.get("fetched")
        stored = fetched.stored if isinstance(fetched, FetchedPage) else None
        if stored is None:
            as_stored = False
            fingerprint(item)
        else:
            as_stored = fingerprint_as_stored(item, stored, self._extractor())
        self.stats.inc_value("tass/dedupe/hashed")
        if self._articles is None:
            return item
        aid: int = adapter["id"]
        published: datetime | None = adapter.get("published_at")
        keys = frozenset(adapter["minhash_bands"])
        if as_stored and stored is not None:
            # Re-extracted as it is stored: its group stands as stored (module docstring).
            adapter["duplicate_of"] = stored.duplicate_of
            this = _Seen(aid, adapter["minhash"], published, None, adapter, keys, settled=True)
            self._recent.remember(this)
            self.stats.inc_value("tass/dedupe/as_stored")
            return item
        adapter["duplicate_of"] = None
        this = _Seen(aid, adapter["minhash"], published, None, adapter, keys)
        self._recent.remember(this)
        try:
            docs = await self._candidates(this)
            await self._match(this, docs, write=False)
            this.settled = _settled(this, docs)
        except RetryDeadlineExceeded as exc:
            self.stats.inc_value("tass/dedupe/unchecked")
            logger.error("Near-duplicate check skipped for %s: %s", adapter.get("url"), exc)
        return item

    async def item_scraped(self, item: Any) -> None:
        """Match an article again once the store has written it (every stage is done).

        Another worker may have been deduplicating a near-duplicate at the same moment: neither
        saw the other, as neither was stored yet. Of two such articles, the one stored second is
        re-checked after both are stored, so it finds the other and the group is settled then.
        """
        if self._articles is None or not is_article(item):
            return
        adapter = ItemAdapter(item)
        signature = adapter.get("minhash")
        if not signature:
            return
        earlier = self._recent.get(adapter["id"])
        if not (earlier and earlier.adapter and earlier.adapter.item is item):
            earlier = None
        try:
            if earlier is not None:
                # What the first check decided for stored documents, now that this one is
                # stored too (so no copy ever points at an id that is not stored yet).
                pending, earlier.pending = earlier.pending, []
                earlier.wrote |= await self._repoint(pending, write=True)
        except RetryDeadlineExceeded as exc:
            self.stats.inc_value("tass/dedupe/unchecked")
            logger.error("Near-duplicate re-point skipped for %s: %s", adapter.get("url"), exc)
            return
        if earlier is not None and earlier.settled and not earlier.wrote:
            self.stats.inc_value("tass/dedupe/late_skipped")
            return
        # The first check's keys, carried by the item (pipelines.schema), not hashed again.
        keys = frozenset(adapter.get("minhash_bands") or bands(signature))
        this = _Seen(
            adapter["id"],
            signature,
            adapter.get("published_at"),
            adapter.get("duplicate_of"),
            adapter,
            keys,
        )
        try:
            if await self._match(this, await self._candidates(this, late=True), write=True):
                self.stats.inc_value("tass/dedupe/late_matches")
        except RetryDeadlineExceeded as exc:
            self.stats.inc_value("tass/dedupe/unchecked")
            logger.error("Near-duplicate re-check skipped for %s: %s", adapter.get("url"), exc)

    def _extractor(self) -> str:
        """The version of this code (``crawler.version``), for ``fingerprint_as_stored``."""
        if self._version is None:
            self._version = extractor_version(self.crawler.settings)
        return self._version

    def _deadline(self) -> float:
        assert self.mongo_config is not None
        return time.monotonic() + self.mongo_config.retry_deadline

    def _on_retry(self, _exc: BaseException) -> None:
        self.stats.inc_value("tass/dedupe/retries")

    async def _call(self, what: str, call: Any) -> Any:
        end = self._deadline()
        return await mongo.retry(
            call,
            what=what,
            deadline=lambda: min(end, self._shutdown.deadline()),  # a stopping worker waits less
            on_retry=self._on_retry,
        )

    async def _candidates(self, this: _Seen, *, late: bool = False) -> list[Document]:
        """The stored documents sharing a band with ``this`` (its own included), batched (the
        late checks apart: a store batch's worth per query)."""
        lookup = self._late if late else self._lookup
        assert lookup is not None
        # Late, the store has said whether what it holds of ``this`` is this version (so its
        # bands): then nobody in the batch needs it from MongoDB unless their bands meet.
        own = this.id if late and this.adapter and this.adapter.get("stored_as_is") else None
        return await lookup.candidates(this.bands, own)

    async def _fetch_candidates(
        self, keys: list[int], limit: int, skip: list[int]
    ) -> list[Document]:
        """One indexed query for the candidates of a whole batch (``CandidateLookup``)."""
        articles = self._articles
        assert articles is not None

        def find() -> list[Document]:
            # The ids first: a server that tests a candidate's clauses in order, and an
            # ``$in`` key by key (SecantusDB does), then rejects the batch's own documents,
            # most of what the bands find late, on their id (measured: 0.9 s against 0.05 s
            # for 100 articles' late check over 3,000 stored).
            query: Document = {"_id": {"$nin": skip}} if skip else {}
            query["minhash_bands"] = {"$in": keys}
            projection = dict.fromkeys(CANDIDATE_FIELDS, 1)
            return list(articles.find(query, projection).limit(limit))

        self.stats.inc_value("tass/dedupe/lookups")
        if skip:
            self.stats.inc_value("tass/dedupe/own_left_out", len(skip))
        found: list[Document] = await self._call("dedupe candidate lookup", find)
        return found

    async def _match(self, this: _Seen, docs: list[Document], *, write: bool) -> bool:
        """Mark ``this`` or re-point its group, given its stored candidates ``docs``; whether
        anything changed. Stored documents are re-pointed only with ``write`` (the late check,
        once ``this`` is stored); the first check keeps its re-points in ``this.pending``."""
        articles = self._articles
        assert articles is not None and this.adapter is not None
        if not this.bands:
            return False  # a body without words matches nothing

        found: dict[int, _Seen] = {}
        for doc in docs:
            stored = doc.get("minhash")
            if doc["_id"] != this.id and isinstance(stored, list) and len(stored) == BINS:
                seen = _Seen(doc["_id"], stored, doc.get("published_at"), None)
                seen.duplicate_of = doc.get("duplicate_of")
                found[seen.id] = seen
        for seen in self._recent.sharing(this.bands):
            if seen.id != this.id:
                seen.duplicate_of = seen.adapter.get("duplicate_of") if seen.adapter else None
                found[seen.id] = seen
        minimum = self.config.min_similarity
        matches = [s for s in found.values() if similarity(s.minhash, this.minhash) >= minimum]
        if not matches:
            return False
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
            return False  # every match already points at this article
        first = min(roots, key=lambda r: _order(known.get(r), r))
        if _order(known.get(first), first) < _order(this.published_at, this.id):
            before = this.adapter.get("duplicate_of")
            if before == first:
                return False  # already marked (a re-check that found nothing new)
            this.adapter["duplicate_of"] = first
            if before is None:
                self.stats.inc_value("tass/dedupe/near_duplicates")
            await self._decide(this, [this.id], first, write=write)
        else:
            await self._decide(this, sorted(roots), this.id, write=write)
        return True

    async def _decide(
        self, this: _Seen, old_roots: list[int], new_root: int, *, write: bool
    ) -> None:
        wrote = await self._repoint([(old_roots, new_root)], write=write)
        if write:
            this.wrote |= wrote
        else:
            this.pending.append((old_roots, new_root))

    async def _repoint(self, moves: list[tuple[list[int], int]], *, write: bool) -> bool:
        """For each ``(old_roots, new_root)`` in order, make the originals ``old_roots`` and
        their copies duplicates of ``new_root``: the articles this process holds now, and
        (``write``) the stored ones, every move in one ordered bulk write (one command, its
        updates applied in turn); whether any stored document was modified."""
        articles = self._articles
        assert articles is not None
        for old_roots, new_root in moves:
            for seen in self._recent.values():
                if seen.adapter is None or seen.id == new_root:
                    continue
                if seen.id in old_roots or seen.adapter.get("duplicate_of") in old_roots:
                    seen.adapter["duplicate_of"] = new_root
        if not write or not moves:
            return False
        updates: list[UpdateMany | UpdateOne] = []
        for old_roots, new_root in moves:
            to_new = {"$set": {"duplicate_of": new_root}}
            updates.append(UpdateMany({"_id": {"$in": old_roots}}, to_new))
            updates.append(
                UpdateMany({"duplicate_of": {"$in": old_roots}, "_id": {"$ne": new_root}}, to_new)
            )
            # The new original is nobody's copy (a stale mark would make a cycle).
            updates.append(
                UpdateOne(
                    {"_id": new_root, "duplicate_of": {"$ne": None}},
                    {"$set": {"duplicate_of": None}},
                )
            )

        def update() -> int:
            return articles.bulk_write(updates, ordered=True).modified_count

        modified: int = await self._call("dedupe re-point", update)
        if modified:
            self.stats.inc_value("tass/dedupe/reassigned", modified)
        return bool(modified)
