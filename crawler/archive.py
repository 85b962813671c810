"""The raw archive: every article response that becomes a stored version, kept as fetched.

Three pieces, each the one home of its concern:

- *Capture* (the spider layer): ``ArchiveMiddleware`` gives each ``ArticleItem`` a spider
  callback yields the response it came from, as a ``FetchedPage`` of plain values
  (``fetched_page``): the URL asked for and the one that answered, status, protocol, server
  address, the headers that matter (``ARCHIVED_HEADERS``), the time it arrived, the body and
  the feed hints the request carried (``codec.HINTS_META``: what the listing API and RSS said
  of the article, which the page object weighed). Page objects never see it; a Scrapy
  ``Response`` never goes into an item.
  ``TASS_ARCHIVE_ENABLED=false`` turns the middleware (and so the archive) off.
- *The stored page* (collection ``pages``, one document per article version): ``page_doc``
  builds it, ``page_of`` reads it back. The body is compressed with zstd (level
  ``ARCHIVE_ZSTD_LEVEL``); the store writes it in the same batch as the article, before the
  request is acknowledged (``pipelines.store``).
- *Replay*: ``response_of(page)`` rebuilds the Scrapy response the spider got (the same
  response class and the same headers, so the same text decoding, and the same feed hints on
  its request), for ``scrapy reparse`` to run the spider's own callback on, with no request
  to the site: a re-extraction weighs the signals the crawl weighed, so an unchanged page
  object gives unchanged fields and provenance.

Why zstd (measured in ``bench/archive.py``): at level 3 it compresses an article page as
small as gzip -6 in about a seventh of the time, and decompresses several times faster
(reparse reads every page back). It is already installed (Scrapy requires ``backports.zstd``
for ``Content-Encoding: zstd``) and is the standard library's ``compression.zstd`` from
Python 3.14, whose API the backport is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from bson import Binary
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes

from crawler import defaults
from crawler.frontier.codec import HINTS_META
from crawler.items import ArticleItem, FetchedPage

if sys.version_info >= (3, 14):  # pragma: no cover - the project runs on 3.11 today
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.mongo import Document

ARCHIVED_HEADERS = (
    "Content-Type",
    "Content-Language",
    "Date",
    "Last-Modified",
    "ETag",
    "Expires",
    "Cache-Control",
    "Link",
    "X-Robots-Tag",
    "Server",
)
"""Response headers kept with a page: what decodes it (``Content-Type``), dates it, names its
language, version or robots rules. Not kept: cookies, the transfer's ``Content-Length`` and
``Content-Encoding`` (the downloader undid it; the stored body is the decoded one),
hop-by-hop headers."""

BODY_CODEC = "zstd"
"""The ``body_codec`` of a stored page."""


def fetched_page(response: Response, now: datetime | None = None) -> FetchedPage:
    """The archived form of ``response``: plain values, no Scrapy objects."""
    request = response.request
    meta = request.meta if request is not None else {}
    asked = (meta.get("redirect_urls") or [request.url if request is not None else response.url])[0]
    wanted = {name.lower() for name in ARCHIVED_HEADERS}
    headers = tuple(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, values in response.headers.items()
        if name.decode("latin-1").lower() in wanted
        for value in values
    )
    ip = response.ip_address
    hints = meta.get(HINTS_META)
    return FetchedPage(
        url=asked,
        final_url=response.url,
        status=response.status,
        headers=headers,
        fetched_at=_millis(now or datetime.now(UTC)),
        body=response.body,
        protocol=response.protocol,
        ip_address=str(ip) if ip is not None else None,
        hints=dict(hints) if isinstance(hints, dict) and hints else None,
    )


def response_of(page: FetchedPage) -> Response:
    """The response the spider got for ``page``: same class, URL, status, headers and body;
    its request carries the redirect history (``redirect_urls``) as Scrapy's would."""
    headers = Headers(list(page.headers))
    meta: dict[str, Any] = {"kind": "article"}
    if page.url != page.final_url:
        meta["redirect_urls"] = [page.url]
    if page.hints:
        meta[HINTS_META] = dict(page.hints)
    request = Request(page.final_url, meta=meta)
    cls = responsetypes.from_args(headers=headers, url=page.final_url, body=page.body)
    return cls(
        url=page.final_url,
        status=page.status,
        headers=headers,
        body=page.body,
        request=request,
        protocol=page.protocol,
    )


def page_doc(page: FetchedPage, article_id: int, revision: int, content_hash: str) -> Document:
    """The ``pages`` document of the version ``revision`` of article ``article_id``."""
    return {
        "article_id": article_id,
        "revision": revision,
        "content_hash": content_hash,
        "url": page.url,
        "final_url": page.final_url,
        "status": page.status,
        "protocol": page.protocol,
        "ip_address": page.ip_address,
        "headers": [list(pair) for pair in page.headers],
        "fetched_at": page.fetched_at,
        "hints": page.hints,
        "body_codec": BODY_CODEC,
        "body_size": len(page.body),
        "body": Binary(zstd.compress(page.body, level=defaults.ARCHIVE_ZSTD_LEVEL)),
    }


class ArchivedPageError(ValueError):
    """A ``pages`` document that cannot be read back (unknown codec, damaged body)."""


def page_of(doc: Document) -> FetchedPage:
    """The ``FetchedPage`` a ``pages`` document holds; ``ArchivedPageError`` if it cannot."""
    where = f"archived page of article {doc.get('article_id')} revision {doc.get('revision')}"
    if doc.get("body_codec") != BODY_CODEC:
        raise ArchivedPageError(f"{where}: unknown body codec {doc.get('body_codec')!r}")
    try:
        body = zstd.decompress(bytes(doc["body"]))
    except (KeyError, TypeError, zstd.ZstdError) as exc:
        raise ArchivedPageError(f"{where}: the body does not decompress ({exc})") from exc
    if len(body) != doc.get("body_size"):
        raise ArchivedPageError(
            f"{where}: the body is {len(body)} bytes, {doc.get('body_size')} were stored"
        )
    fetched_at = doc["fetched_at"]
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=UTC)
    return FetchedPage(
        url=doc["url"],
        final_url=doc["final_url"],
        status=int(doc["status"]),
        headers=tuple((str(k), str(v)) for k, v in doc.get("headers") or []),
        fetched_at=fetched_at,
        body=body,
        protocol=doc.get("protocol"),
        ip_address=doc.get("ip_address"),
        hints=doc.get("hints") or None,
        article_id=doc.get("article_id"),
        revision=doc.get("revision"),
    )


def _millis(moment: datetime) -> datetime:
    """``moment`` at BSON's millisecond precision (what MongoDB gives back)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class ArchiveMiddleware:
    """Spider middleware: puts the response into each article item as a ``FetchedPage``."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("TASS_ARCHIVE_ENABLED", defaults.TASS_ARCHIVE_ENABLED):
            raise NotConfigured("the raw archive is off (TASS_ARCHIVE_ENABLED=false)")
        return cls(crawler)

    def _with_page(self, response: Response, output: Any) -> Any:
        if isinstance(output, ArticleItem) and output.fetched is None:
            output.fetched = fetched_page(response)
        return output

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterator[Any]:
        return (self._with_page(response, output) for output in result)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        async for output in result:
            yield self._with_page(response, output)
