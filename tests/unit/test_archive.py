"""The raw archive's three pieces: capture from a response, the stored page, the replay."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import bson
import pytest
from bson.codec_options import CodecOptions
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from crawler.archive import (
    ArchivedPageError,
    ArchiveMiddleware,
    fetched_page,
    page_doc,
    page_of,
    response_of,
    zstd,
)
from crawler.frontier.codec import HINTS_META
from crawler.items import ArticleItem, FetchedPage

HTML = (
    "<html><head><title>Мороз - TASS</title></head>"
    "<body><p>MOSCOW, October 26. /TASS/. Текст статьи, ü.</p></body></html>"
)
NOW = datetime(2026, 10, 7, 9, 30, 1, 123456, tzinfo=UTC)


def _response(body: bytes, content_type: bytes, *, redirected: bool = False) -> HtmlResponse:
    asked = "https://tass.com/sport/2198549"
    final = "https://tass.com/sports/2198549"
    meta = {"redirect_urls": [asked]} if redirected else {}
    request = Request(final if redirected else asked, meta=meta)
    return HtmlResponse(
        url=final if redirected else asked,
        status=200,
        headers={
            "Content-Type": content_type,
            "Set-Cookie": "session=secret",
            "Last-Modified": "Wed, 07 Oct 2026 09:00:00 GMT",
            "Link": ["<https://tass.com/a>; rel=preload", "<https://tass.com/b>; rel=preload"],
        },
        body=body,
        request=request,
        protocol="HTTP/1.1",
    )


def test_capture_keeps_what_matters_and_drops_the_rest() -> None:
    page = fetched_page(_response(HTML.encode(), b"text/html; charset=utf-8", redirected=True), NOW)
    assert page.url == "https://tass.com/sport/2198549"  # asked for
    assert page.final_url == "https://tass.com/sports/2198549"  # answered
    assert page.status == 200 and page.protocol == "HTTP/1.1"
    names = [name for name, _ in page.headers]
    assert "Set-Cookie" not in names
    assert names.count("Link") == 2  # repeated headers are kept, in order
    assert ("Content-Type", "text/html; charset=utf-8") in page.headers
    assert page.fetched_at == NOW.replace(microsecond=123000)  # BSON's precision
    assert page.body == HTML.encode()


def test_stored_page_round_trips_through_bson_compressed() -> None:
    body = HTML.encode() * 50
    page = fetched_page(_response(body, b"text/html; charset=utf-8"), NOW)
    doc = page_doc(page, 2198549, 2, "abc")
    assert doc["body_size"] == len(body)
    assert len(doc["body"]) < len(body) / 10  # repetitive text compresses
    options = CodecOptions(tz_aware=True, tzinfo=UTC)
    again = page_of(bson.decode(bson.encode(doc), codec_options=options))
    assert again == dataclasses.replace(page, article_id=2198549, revision=2)
    assert doc["article_id"] == 2198549 and doc["revision"] == 2 and doc["content_hash"] == "abc"


def test_the_feed_hints_the_request_carried_are_archived_and_replayed() -> None:
    """A re-extraction weighs the signals the crawl weighed: the listing API's and RSS's hints
    go into the archive with the page and come back on the replayed request."""
    response = _response(HTML.encode(), b"text/html; charset=utf-8")
    said = {"a": {"mark": "Ukraine crisis", "title": "Мороз"}, "r": {"category": "World"}}
    response.request.meta[HINTS_META] = said  # type: ignore[union-attr]
    page = fetched_page(response, NOW)
    assert page.hints == said
    options = CodecOptions(tz_aware=True, tzinfo=UTC)
    again = page_of(bson.decode(bson.encode(page_doc(page, 2198549, 1, "abc")), options))
    assert again.hints == said
    assert response_of(again).meta[HINTS_META] == said
    # A page fetched without hints replays without them.
    plain = page_of(bson.decode(bson.encode(page_doc(fetched_page(_response(
        HTML.encode(), b"text/html"), NOW), 2198549, 1, "abc")), options))  # fmt: skip
    assert plain.hints is None and HINTS_META not in response_of(plain).meta


def test_a_damaged_page_is_an_error_that_names_it() -> None:
    page = fetched_page(_response(HTML.encode(), b"text/html"), NOW)
    doc = page_doc(page, 7, 1, "h")
    with pytest.raises(ArchivedPageError, match="article 7 revision 1: unknown body codec"):
        page_of({**doc, "body_codec": "lz4"})
    with pytest.raises(ArchivedPageError, match="does not decompress"):
        page_of({**doc, "body": b"not zstd at all"})
    with pytest.raises(ArchivedPageError, match="bytes, 3 were stored"):
        page_of({**doc, "body_size": 3})
    assert zstd.decompress(bytes(doc["body"])) == HTML.encode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (HTML.encode("utf-8"), b"text/html; charset=utf-8"),
        # No charset in the header: the <meta> of the body decides, as in the crawl.
        (
            HTML.replace("<head>", '<head><meta charset="windows-1251">')
            .replace("ü", "u")
            .encode("cp1251"),
            b"text/html",
        ),
        (HTML.replace("ü", "u").encode("cp1251"), b"text/html; charset=windows-1251"),
    ],
)
def test_replayed_response_decodes_as_the_fetched_one(body: bytes, content_type: bytes) -> None:
    original = _response(body, content_type, redirected=True)
    replayed = response_of(fetched_page(original, NOW))
    assert isinstance(replayed, TextResponse)
    assert type(replayed) is type(original)
    assert replayed.text == original.text and "Мороз" in replayed.text
    assert replayed.url == original.url
    assert replayed.request is not None
    assert replayed.request.meta["redirect_urls"] == ["https://tass.com/sport/2198549"]


def test_middleware_puts_the_response_into_article_items_only() -> None:
    crawler = get_crawler(settings_dict={"TASS_ARCHIVE_ENABLED": True})
    middleware = ArchiveMiddleware.from_crawler(crawler)
    response = _response(HTML.encode(), b"text/html; charset=utf-8")
    item = ArticleItem(
        id=2198549,
        url="https://tass.com/sport/2198549",
        section="sports",
        kind="news",
        title="t",
        lead=None,
        body="b",
        dateline=None,
        published_at=None,
        modified_at=None,
    )
    request = Request("https://tass.com/politics/1")
    out = list(middleware.process_spider_output(response, [item, request]))
    assert out[1] is request
    assert isinstance(out[0].fetched, FetchedPage)
    assert out[0].fetched.body == response.body


def test_middleware_is_off_with_the_archive() -> None:
    crawler = get_crawler(settings_dict={"TASS_ARCHIVE_ENABLED": False})
    with pytest.raises(NotConfigured, match="TASS_ARCHIVE_ENABLED"):
        ArchiveMiddleware.from_crawler(crawler)
