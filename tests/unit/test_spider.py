"""The spider's own rules on Scrapy objects: link caps, the URL asked for, failures."""

from __future__ import annotations

import logging

from scrapy import Request
from scrapy.http import HtmlResponse, TextResponse, XmlResponse
from twisted.python.failure import Failure

from crawler.frontier.codec import VIA_META
from crawler.frontier.counters import Counters
from crawler.frontier.lifecycle import RunScope
from crawler.items import PageFailure
from crawler.offsite import OffsiteRedirect, OffsiteRequest
from crawler.spiders.tass import TassSpider
from crawler.spiders.unexpected import UnexpectedErrorMiddleware
from tests.unit.frontier_helpers import spider

BASE = "https://tass.com"


def counted(s: TassSpider) -> dict[str, int]:
    """Put ``s`` in a run whose counters land in the returned dict."""
    seen: dict[str, int] = {}

    def sink(key: str, value: int) -> None:
        seen[key] = seen.get(key, 0) + value

    s.enter_run(RunScope("run-1", s.run.params, counters=Counters(sink)))
    return seen


def hub_with_links(count: int) -> HtmlResponse:
    links = "".join(f'<a href="/world/{1_000_001 + 2 * i}">x</a>' for i in range(count))
    body = f"<html><body><a href='/politics'>P</a>{links}</body></html>".encode()
    return HtmlResponse(f"{BASE}/some-theme", body=body, request=Request(f"{BASE}/some-theme"))


def test_a_hub_page_gives_at_most_its_cap_of_links_and_the_cut_is_counted(caplog) -> None:
    s = spider(TASS_MAX_PAGE_LINKS=100)
    counters = counted(s)
    with caplog.at_level(logging.WARNING, logger="crawler.spiders.tass"):
        out = list(s.parse_hub(hub_with_links(2500)))
    requests = [r for r in out if isinstance(r, Request)]
    assert len(requests) == 100
    # In page order, each marked with its page for the run's cap.
    assert requests[0].url == f"{BASE}/world/1000001"
    assert {r.meta[VIA_META] for r in requests} == {f"{BASE}/some-theme"}
    assert counters == {"tass/links/pages_cut": 1, "tass/links/page_cut": 2501 - 100}
    assert f"Link cap: {BASE}/some-theme holds 2501 links" in caplog.text


def test_a_page_under_its_cap_is_followed_whole_and_nothing_is_counted() -> None:
    s = spider(TASS_MAX_PAGE_LINKS=100)
    counters = counted(s)
    out = list(s.parse_hub(hub_with_links(99)))
    assert len([r for r in out if isinstance(r, Request)]) == 100
    assert counters == {}


def test_a_listing_is_not_capped_and_its_links_are_not_page_links() -> None:
    s = spider(TASS_MAX_PAGE_LINKS=10)
    items = "".join(
        f"<item><title>t</title><link>{BASE}/world/{1_000_001 + 2 * i}</link>"
        "<pubDate>Wed, 07 Oct 2026 18:55:53 +0300</pubDate></item>"
        for i in range(50)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'
    response = XmlResponse(f"{BASE}/rss/v2.xml", body=body.encode())
    requests = [r for r in s.parse_rss(response) if isinstance(r, Request)]
    assert len(requests) == 50
    assert not any(VIA_META in r.meta for r in requests)


def test_a_malformed_page_cap_stops_the_crawl_with_its_name() -> None:
    try:
        spider(TASS_MAX_PAGE_LINKS=0)
    except ValueError as exc:
        assert "TASS_MAX_PAGE_LINKS=0" in str(exc)
    else:
        raise AssertionError("TASS_MAX_PAGE_LINKS=0 was accepted")


def asked_then_redirected(asked: str, final: str, body: bytes = b"<html></html>") -> TextResponse:
    first = Request(asked, meta={"article_id": int(asked.rsplit("/", 1)[1]), "kind": "article"})
    second = first.replace(url=final)
    second.meta["redirect_urls"] = [asked]
    return HtmlResponse(final, body=body, request=second)


def test_an_article_redirected_to_another_page_of_the_site_fails_the_url_asked_for() -> None:
    s = spider()
    for final in (f"{BASE}/politics/2150015", f"{BASE}/today"):
        response = asked_then_redirected(f"{BASE}/world/2150013", final)
        (failure,) = list(s.parse_article(response))
        assert isinstance(failure, PageFailure)
        assert (failure.url, failure.reason) == (f"{BASE}/world/2150013", "redirected_away")
        assert failure.article_id == 2150013 and final in failure.detail


def test_an_article_moved_within_its_own_id_is_read_under_the_url_asked_for() -> None:
    s = spider()
    response = asked_then_redirected(f"{BASE}/sport/2150013", f"{BASE}/sports/2150013")
    (failure,) = list(s.parse_article(response))  # read, under the URL asked for
    assert isinstance(failure, PageFailure) and failure.reason == "not_an_article"
    assert failure.url == f"{BASE}/sports/2150013"  # canonical form of the URL asked for


def test_a_refused_request_is_a_failure_of_the_url_asked_for() -> None:
    s = spider()
    asked = Request(f"{BASE}/world/2150013", meta={"redirect_urls": [f"{BASE}/world/2150013"]})
    for exc, reason in (
        (
            OffsiteRedirect("http://elsewhere/x", "redirected to http://elsewhere/x"),
            "offsite_redirect",
        ),
        (OffsiteRequest("http://elsewhere/x", "not on the site"), "offsite"),
    ):
        failure = Failure(exc)
        failure.request = asked  # type: ignore[attr-defined]
        (record,) = list(s.on_error(failure))
        assert (record.url, record.reason, record.article_id) == (
            f"{BASE}/world/2150013",
            reason,
            2150013,
        )


def test_an_unexpected_exception_becomes_the_failure_of_the_url_asked_for(caplog) -> None:
    s = spider()
    middleware = UnexpectedErrorMiddleware.from_crawler(s.crawler)
    response = asked_then_redirected(f"{BASE}/world/2150013", f"{BASE}/world/2150013")
    response.meta["retry_times"] = 2
    try:
        raise RecursionError("maximum recursion depth exceeded")
    except RecursionError as exc:
        with caplog.at_level(logging.ERROR, logger="crawler.spiders.tass"):
            out = middleware.process_spider_exception(response, exc)
    assert out is not None
    (failure,) = out
    assert failure.reason == "extraction_error:RecursionError"
    assert failure.url == f"{BASE}/world/2150013" and failure.article_id == 2150013
    assert failure.attempts == 3 and failure.status == 200
    assert "maximum recursion depth" in failure.detail
    assert "Traceback" in caplog.text  # logged with its traceback: it is a bug somewhere
    assert s.crawler.stats.get_value("tass/failures/extraction_error:RecursionError") == 1


def test_the_middleware_leaves_other_spiders_alone() -> None:
    s = spider()
    middleware = UnexpectedErrorMiddleware.from_crawler(s.crawler)
    s.crawler.spider = object()  # a spider that records no failures
    assert middleware.process_spider_exception(hub_with_links(1), ValueError("x")) is None
