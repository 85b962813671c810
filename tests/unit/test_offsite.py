"""The site rule for requests and redirects (``crawler.offsite``), on Scrapy objects."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response

from crawler.offsite import (
    OffsiteRedirect,
    OffsiteRequest,
    SiteMetaRefreshMiddleware,
    SiteOnlyMiddleware,
    SiteRedirectMiddleware,
    asked_url,
)
from tests.unit.frontier_helpers import spider

BASE = "http://127.0.0.1:8123"


def crawler():
    return spider(TASS_BASE_URL=BASE).crawler


def test_a_request_for_another_host_or_port_is_refused_whatever_its_flags() -> None:
    c = crawler()
    middleware = SiteOnlyMiddleware.from_crawler(c)
    assert middleware.process_request(Request(f"{BASE}/world/1")) is None
    for url in ("http://127.0.0.1:8124/world/1", "http://localhost:8123/world/1"):
        # dont_filter (every retry and replay) and allow_offsite do not let it through.
        request = Request(url, dont_filter=True, meta={"allow_offsite": True})
        with pytest.raises(OffsiteRequest) as refused:
            middleware.process_request(request)
        assert refused.value.reason == "offsite" and refused.value.url == url
    assert c.stats.get_value("tass/offsite/refused") == 2


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:9999/story", "//elsewhere.example/story", "http://localhost:8123/x"],
)
def test_a_redirect_off_the_site_fails_the_request_asked_for(location: str) -> None:
    c = crawler()
    middleware = SiteRedirectMiddleware.from_crawler(c)
    request = Request(f"{BASE}/world/1")
    response = Response(request.url, status=301, headers={"Location": location}, request=request)
    with pytest.raises(OffsiteRedirect) as refused:
        middleware.process_response(request, response)
    assert refused.value.reason == "offsite_redirect"
    assert "301" in str(refused.value) and request.url in str(refused.value)
    assert c.stats.get_value("tass/offsite/redirects_refused") == 1


def test_a_redirect_within_the_site_is_followed_and_remembers_the_url_asked_for() -> None:
    middleware = SiteRedirectMiddleware.from_crawler(crawler())
    request = Request(f"{BASE}/sport/1")
    response = Response(request.url, status=301, headers={"Location": "/sports/1"}, request=request)
    redirected = middleware.process_response(request, response)
    assert isinstance(redirected, Request) and redirected.url == f"{BASE}/sports/1"
    assert asked_url(redirected) == request.url
    assert asked_url(request) == request.url


@pytest.mark.parametrize(
    ("target", "leaves"), [("http://127.0.0.1:9999/plain", True), ("/world/3", False)]
)
def test_a_meta_refresh_is_held_to_the_site_like_a_redirect(target: str, leaves: bool) -> None:
    middleware = SiteMetaRefreshMiddleware.from_crawler(crawler())
    request = Request(f"{BASE}/world/1")
    body = f'<html><head><meta http-equiv="refresh" content="0; url={target}"></head></html>'
    response = HtmlResponse(request.url, body=body.encode(), request=request)
    if leaves:
        with pytest.raises(OffsiteRedirect, match="meta refresh"):
            middleware.process_response(request, response)
    else:
        redirected = middleware.process_response(request, response)
        assert isinstance(redirected, Request) and redirected.url == f"{BASE}/world/3"
