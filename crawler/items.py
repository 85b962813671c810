"""The article item: the schema of one stored document, field by field.

Page objects build it from one response; pipelines clean, validate, deduplicate and store it
through ``ItemAdapter``. Field names are the names stored in MongoDB (collection ``articles``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

ArticleKind = Literal["news", "article", "interview", "opinion", "gallery"]
ARTICLE_KINDS: tuple[ArticleKind, ...] = ("news", "article", "interview", "opinion", "gallery")


class Image(TypedDict):
    """A photo of the article: absolute ``url``, ``caption`` text and ``credit`` (``© …``)."""

    url: str
    caption: str | None
    credit: str | None


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """An article response as it was fetched, kept for the raw archive (``crawler.archive``).

    Captured by the spider layer (``crawler.archive.ArchiveMiddleware``), never by a page
    object, and never a Scrapy ``Response``: plain values only.
    """

    url: str
    """The URL asked for (before any redirect)."""

    final_url: str
    """The URL that answered (after redirects)."""

    status: int
    """The HTTP status of the answer."""

    headers: tuple[tuple[str, str], ...]
    """The response headers that matter (``crawler.archive.ARCHIVED_HEADERS``), in order."""

    fetched_at: datetime
    """When the response was received, aware, in UTC."""

    body: bytes
    """The body as received (transfer and content encodings undone by the downloader)."""

    protocol: str | None = None
    """The HTTP version that answered (``HTTP/1.1``), when the downloader knows it."""

    ip_address: str | None = None
    """The server's address, when the downloader knows it."""

    hints: dict[str, Any] | None = None
    """What feeds said of the article when it was fetched (``crawler.pages.hints``, by source),
    kept so that a re-extraction weighs the same signals the crawl did; None: none."""

    article_id: int | None = None
    """Read back from the archive: the article it is kept under (None: fresh from the site)."""

    revision: int | None = None
    """Read back from the archive: the article version it produced (None: fresh)."""

    stored: StoredVersion | None = None
    """Read back from the archive by ``scrapy reparse``: what ``articles`` holds of that
    version (None: fresh from the site, or not read)."""


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """The ``articles`` document of the version an archived page produced, as read with the
    page by ``scrapy reparse`` (``crawler.reparse.worker``): the dedupe stage takes its
    fingerprints and near-duplicate mark for a page whose text comes out the same
    (``pipelines.dedupe``), the re-extraction stage compares the new fields with it
    (``pipelines.reextract``), so neither reads it again."""

    document: Mapping[str, Any]
    """The document as MongoDB gave it back."""

    @property
    def content_hash(self) -> str | None:
        value = self.document.get("content_hash")
        return value if isinstance(value, str) else None

    @property
    def minhash(self) -> tuple[int, ...] | None:
        value = self.document.get("minhash")
        return tuple(value) if isinstance(value, list) else None

    @property
    def minhash_bands(self) -> tuple[int, ...] | None:
        value = self.document.get("minhash_bands")
        return tuple(value) if isinstance(value, list) else None

    @property
    def duplicate_of(self) -> int | None:
        value = self.document.get("duplicate_of")
        return value if isinstance(value, int) else None

    @property
    def extractor(self) -> str | None:
        """The code that extracted the stored version (``crawler.version``)."""
        value = self.document.get("extractor")
        return value if isinstance(value, str) else None


class Related(TypedDict):
    """A "Read also" target: article ``id``, canonical ``url`` and the linked ``title``."""

    id: int
    url: str
    title: str


@dataclass(slots=True)
class ArticleItem:
    """One article as extracted from its page, before the pipelines."""

    id: int
    """The article id from the URL (``/<section>/<id>``); stored as ``_id``."""

    url: str
    """Canonical absolute URL, ``<base>/<section>/<id>``."""

    section: str
    """Slug of the primary path's first segment (a section, a theme slug or ``russia``)."""

    kind: ArticleKind
    """Page template: ``news``, ``article``, ``interview``, ``opinion`` or ``gallery``."""

    title: str
    """Headline without the `` - TASS`` suffix."""

    lead: str | None
    """The standfirst under the headline, or None where the page has none."""

    body: str
    """Paragraphs (h2 subheads and blockquotes included) joined by a blank line, NFC."""

    dateline: str | None
    """The city printed at the start of the first paragraph (``MOSCOW``), or None."""

    published_at: datetime | None
    """Publication time, timezone-aware (UTC after the clean stage)."""

    modified_at: datetime | None
    """Last edit time from JSON-LD ``dateModified``, timezone-aware; None if not given."""

    tags: list[str] = field(default_factory=list)
    """Tag texts in page order."""

    mark: str | None = None
    """The theme label above the headline ("SPIEF-2025"), or None."""

    images: list[Image] = field(default_factory=list)
    """Photos with caption and credit, lead photo first."""

    related: list[Related] = field(default_factory=list)
    """The "Read also" targets, in page order."""

    extracted: dict[str, str] = field(default_factory=dict)
    """Provenance: field → the signal its value came from (``{"title": "ld", "mark": "api",
    "lead": "page", ...}``; the signals are ``crawler.pages.signals.SIGNALS``). A field no
    signal answered is absent; ``caption`` is the first photo's caption's."""

    content_hash: str | None = None
    """Hex digest of title, lead and body, set by the dedupe stage; changes mean an edit."""

    minhash: list[int] | None = None
    """64-value MinHash signature of the body (each value < 2**58), set by the dedupe stage."""

    minhash_bands: list[int] | None = None
    """The signature's 10 LSH band keys (signed int64s), set with it; indexed for candidates."""

    duplicate_of: int | None = None
    """The id of the original when this story is a near-duplicate republication, else None."""

    fetched: FetchedPage | None = None
    """The response this item was extracted from, set by the spider layer when the raw archive
    is on; the store keeps it in ``pages`` (never in the article document), then drops it
    from the item."""

    failed_before: bool = False
    """Its request may have failed before where this worker's store cannot know it: a retry,
    a replayed dead letter, a URL fed on ``start_urls``. Set by the spider from the request's
    meta; the store then removes any ``failures`` document of its URL or id whatever it knows
    of failures (``pipelines.failed``). Never stored."""

    stored_as_is: bool = False
    """Set by the store once a batch wrote this item's version or found it stored already
    (outcome inserted, updated or unchanged; not stale, not refused): the stored document's
    bands are then this item's, which the dedupe stage's late check relies on to leave it
    out of its query (``pipelines.dedupe``). Never stored."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (a deep copy)."""
        return dataclasses.asdict(self)


@dataclass(slots=True)
class PageFailure:
    """A fetched URL that could not become an article, and why; stored in ``failures``."""

    url: str
    """The URL as requested (canonical where it could be made canonical)."""

    reason: str
    """A short machine-readable reason (``missing_field:title``, ``http_status``, ``too_large``)."""

    detail: str = ""
    """A human-readable explanation."""

    status: int | None = None
    """The HTTP status of the last attempt, if there was a response."""

    attempts: int = 1
    """How many times the URL was tried."""

    article_id: int | None = None
    """The article id when the URL is an article URL, else None (a hub, a feed)."""

    retry_at: datetime | None = None
    """When the failure is not final: the time its retry is due (the retry middleware's
    record of a failed attempt whose retry waits in the frontier, ``crawler.frontier.retry``).
    Stored as the ``retry`` of the URL's ``failures`` document, so a retry that Redis loses can
    be queued again from MongoDB. None: the failure is final (its retries are spent or it is
    not retried)."""

    retry_request: str = ""
    """With ``retry_at``: the retry as the frontier queues it (``codec.encode_request``, its
    retry count kept, what describes one attempt dropped), to queue it again as it was."""


@dataclass(frozen=True, slots=True)
class RetrySettled:
    """A retried URL answered (2xx or 3xx): no retry of it is pending any more. The store drops
    the ``retry`` of its ``failures`` document (the whole document when that retry was all it
    held); a failure or a stored article that follows settles it as it always does."""

    url: str
