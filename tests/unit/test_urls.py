"""Tests of ``crawler.urls``: canonical URLs and URL kinds for the real site and a replica."""

from __future__ import annotations

import dataclasses

import pytest

from crawler.urls import SECTION_ALIASES, SECTIONS, SiteUrls

TASS = SiteUrls("https://tass.com")
REPLICA = SiteUrls("http://127.0.0.1:8123")


@pytest.mark.parametrize(
    ("url", "referer", "expected"),
    [
        # already canonical
        ("https://tass.com/politics/2149717", None, "https://tass.com/politics/2149717"),
        ("https://tass.com/", None, "https://tass.com/"),
        ("https://tass.com", None, "https://tass.com/"),
        # scheme and www variants
        ("http://tass.com/world/1234567", None, "https://tass.com/world/1234567"),
        ("http://www.tass.com/world/1234567", None, "https://tass.com/world/1234567"),
        ("https://www.tass.com/world/1234567", None, "https://tass.com/world/1234567"),
        ("HTTPS://WWW.TASS.COM/world/1234567", None, "https://tass.com/world/1234567"),
        ("https://tass.com:443/world/1", None, "https://tass.com/world/1"),
        ("http://tass.com:80/world/1", None, "https://tass.com/world/1"),
        # utm tails, other queries and fragments
        (
            "https://tass.com/defense/2150013?utm_source=google.com&utm_medium=organic"
            "&utm_campaign=google.com&utm_referrer=google.com",
            None,
            "https://tass.com/defense/2150013",
        ),
        ("https://tass.com/economy/2150001#comments", None, "https://tass.com/economy/2150001"),
        ("https://tass.com/economy/2150001/?a=1#x", None, "https://tass.com/economy/2150001"),
        ("https://tass.com/?utm_source=x", None, "https://tass.com/"),
        # trailing slashes
        ("https://tass.com/politics/", None, "https://tass.com/politics"),
        ("https://tass.com/politics/2149717/", None, "https://tass.com/politics/2149717"),
        ("https://tass.com//politics//2149717", None, "https://tass.com/politics/2149717"),
        # sport → sports
        ("https://tass.com/sport/1456789", None, "https://tass.com/sports/1456789"),
        ("http://tass.com/sport/1456789?utm_source=x", None, "https://tass.com/sports/1456789"),
        ("https://tass.com/sport", None, "https://tass.com/sports"),
        # case of the first segment: only where safe
        ("https://tass.com/Politics/2149717", None, "https://tass.com/politics/2149717"),
        ("https://tass.com/POLITICS", None, "https://tass.com/politics"),
        ("https://tass.com/Sport/5", None, "https://tass.com/sports/5"),
        ("https://tass.com/userApi/categoryNewsList", None, TASS.listing_api_url()),
        # relative links
        ("/politics/2149717", None, "https://tass.com/politics/2149717"),
        ("/politics/2149717", "https://tass.com/world/1", "https://tass.com/politics/2149717"),
        ("2149717", "https://tass.com/politics/1", "https://tass.com/politics/2149717"),
        ("../world", "https://tass.com/politics/1", "https://tass.com/world"),
        ("//tass.com/world/5", "https://tass.com/politics/1", "https://tass.com/world/5"),
        ("//www.tass.com/world/5", None, "https://tass.com/world/5"),
        ("#top", "https://tass.com/world/5", "https://tass.com/world/5"),
        ("  /world/5  ", None, "https://tass.com/world/5"),
        # themes, russia, news-index kept
        (
            "https://tass.com/military-operation-in-ukraine/2150011",
            None,
            "https://tass.com/military-operation-in-ukraine/2150011",
        ),
        ("/russia/2150009", None, "https://tass.com/russia/2150009"),
        ("/news-index/2150009", None, "https://tass.com/news-index/2150009"),
        ("/space-programs", None, "https://tass.com/space-programs"),
        ("/tag/vladimir-putin", None, "https://tass.com/tag/vladimir-putin"),
        # out of scope
        ("https://tass.ru/politika/123", None, None),
        ("https://cdn-media.tass.ru/width/1020_b9261fa1/tass/m2/en/uploads/i/1.jpg", None, None),
        ("//cdn-media.tass.ru/width/434_30f3d9ca/x.jpg", None, None),
        ("https://example.org/politics/1", None, None),
        ("https://tass.com.evil.org/politics/1", None, None),
        ("https://nottass.com/politics/1", None, None),
        ("https://tass.com:8443/politics/1", None, None),
        ("mailto:editor@tass.com", None, None),
        ("javascript:void(0)", None, None),
        ("tel:+74951234567", None, None),
        ("ftp://tass.com/politics/1", None, None),
        ("data:text/plain,hi", None, None),
        ("", None, None),
        ("   ", None, None),
        ("http://[::1/x", None, None),
        # static files
        ("/images/logo.png", None, None),
        ("https://tass.com/static/app.JS", None, None),
        ("/css/site.css?v=3", None, None),
        ("/media/report.pdf", None, None),
        ("/favicon.ico", None, None),
    ],
)
def test_canonical_real_site(url: str, referer: str | None, expected: str | None) -> None:
    assert TASS.canonical(url, referer) == expected


@pytest.mark.parametrize(
    ("url", "referer", "expected"),
    [
        ("http://127.0.0.1:8123/politics/2149717", None, "http://127.0.0.1:8123/politics/2149717"),
        ("/politics/2149717", None, "http://127.0.0.1:8123/politics/2149717"),
        (
            "/sport/2149717?utm_source=x",
            "http://127.0.0.1:8123/",
            "http://127.0.0.1:8123/sports/2149717",
        ),
        # a path from the root takes the referer's host only; a relative one its path too
        ("/world/1/", "http://127.0.0.1:8123/politics/2?a=b", "http://127.0.0.1:8123/world/1"),
        ("/world/1", "http://127.0.0.1:9999/politics/2", None),
        ("../world/1", "http://127.0.0.1:8123/politics/2", "http://127.0.0.1:8123/world/1"),
        ("3", "http://127.0.0.1:8123/politics/2", "http://127.0.0.1:8123/politics/3"),
        # a scheme without a host is resolved as urljoin does; an absolute URL as it is
        ("http:///world/1", None, "http://127.0.0.1:8123/world/1"),
        ("HTTP://127.0.0.1:8123/World/1;p?", None, "http://127.0.0.1:8123/world/1;p"),
        ("http://127.0.0.1:8123/", None, "http://127.0.0.1:8123/"),
        ("http://127.0.0.1:8123", None, "http://127.0.0.1:8123/"),
        ("http://127.0.0.1:8123/world/", None, "http://127.0.0.1:8123/world"),
        ("http://127.0.0.1:9999/world", None, None),
        ("http://127.0.0.1/world", None, None),
        ("https://tass.com/world/1", None, None),
        ("http://localhost:8123/world/1", None, None),
    ],
)
def test_canonical_replica(url: str, referer: str | None, expected: str | None) -> None:
    assert REPLICA.canonical(url, referer) == expected


@pytest.mark.parametrize(
    ("site", "url", "expected"),
    [
        (TASS, "https://tass.com/world/1", True),
        (TASS, "http://www.tass.com/", True),
        (TASS, "https://tass.com:443/x", True),
        (TASS, "https://tass.com:8443/world/1", False),
        (TASS, "https://evil.tass.com/world/1", False),
        (TASS, "https://tass.com.example.org/world/1", False),
        (TASS, "https://tass.ru/world/1", False),
        (TASS, "ftp://tass.com/world/1", False),
        (TASS, "/world/1", False),
        (TASS, "https://tass.com:99999/", False),
        (REPLICA, "http://127.0.0.1:8123/world/1", True),
        (REPLICA, "http://127.0.0.1:8124/world/1", False),
        (REPLICA, "http://localhost:8123/world/1", False),
        (REPLICA, "http://127.0.0.1/world/1", False),
    ],
)
def test_on_site_is_the_host_and_its_port(site: SiteUrls, url: str, expected: bool) -> None:
    assert site.on_site(url) is expected
    if not expected and "://" in url:  # an absolute link off the site is never followed
        assert site.canonical(url) is None


def test_base_is_normalised() -> None:
    assert SiteUrls("https://TASS.com/").base == "https://tass.com"
    assert SiteUrls("https://tass.com:443").base == "https://tass.com"
    assert SiteUrls("http://127.0.0.1:8123/some/path").base == "http://127.0.0.1:8123"
    with pytest.raises(ValueError):
        SiteUrls("tass.com")
    with pytest.raises(ValueError):
        SiteUrls("ftp://tass.com")


def test_site_urls_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASS.base = "x"  # type: ignore[misc]


def test_www_base_accepts_bare_host() -> None:
    www = SiteUrls("https://www.example.org")
    assert www.canonical("https://example.org/world/1") == "https://www.example.org/world/1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://tass.com/politics/2149717", 2149717),
        ("http://www.tass.com/sport/1456789?utm_source=x", 1456789),
        ("/military-operation-in-ukraine/2150011", 2150011),
        ("/russia/2150009/", 2150009),
        ("/politics", None),
        ("/", None),
        ("/archive/2024", None),
        ("/archive/2024/10/07", None),
        ("/tag/123", None),
        ("/politics/2149717/photo", None),
        ("/politics/abc", None),
        ("/theme2/123", None),
        ("https://tass.ru/politics/1", None),
        ("/politics/1.jpg", None),
    ],
)
def test_article_id(url: str, expected: int | None) -> None:
    assert TASS.article_id(url) == expected
    assert TASS.is_article(url) is (expected is not None)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://tass.com/", "home"),
        ("/", "home"),
        ("/?utm_source=x", "home"),
        ("/politics/2149717", "article"),
        ("/sport/2149717", "article"),
        ("/russia/2149717", "article"),
        ("/politics", "section"),
        ("/sports/", "section"),
        ("/sport", "section"),
        ("/military-operation-in-ukraine", "theme_or_tag"),
        ("/space-programs", "theme_or_tag"),
        ("/tag/vladimir-putin", "theme_or_tag"),
        ("/tags/nato", "theme_or_tag"),
        ("/userApi/categoryNewsList", "api"),
        ("/userApi/search", "api"),
        ("/rss/v2.xml", "rss"),
        ("/sitemap.xml", "sitemap"),
        ("/sitemap/sitemap_news0.xml", "sitemap"),
        ("/today", "other"),
        ("/search", "other"),
        ("/preview", "other"),
        ("/rss", "other"),
        ("/robots.txt", "other"),
        ("/userApi", "api"),
        ("/__replica__", "other"),
        ("/__replica__/truth", "other"),
        ("/archive/2024/10/07", "other"),
        ("/archive", "other"),
        ("/preview/123", "other"),
        ("/politics/2149717/amp", "other"),
        ("/Some_Page", "other"),
        ("https://example.org/politics/1", "other"),
        ("mailto:x@tass.com", "other"),
    ],
)
def test_url_kind(url: str, expected: str) -> None:
    assert TASS.url_kind(url) == expected


def test_section_of() -> None:
    assert TASS.section_of("/sport/5") == "sports"
    assert TASS.section_of("/military-operation-in-ukraine/7") == "military-operation-in-ukraine"
    assert TASS.section_of("/politics") is None


def test_endpoints() -> None:
    assert TASS.listing_api_url() == "https://tass.com/userApi/categoryNewsList"
    assert TASS.rss_url() == "https://tass.com/rss/v2.xml"
    assert TASS.sitemap_index_url() == "https://tass.com/sitemap.xml"
    assert TASS.robots_url() == "https://tass.com/robots.txt"
    assert TASS.section_url("defense") == "https://tass.com/defense"
    assert TASS.section_url("sport") == "https://tass.com/sports"
    assert REPLICA.section_url("world") == "http://127.0.0.1:8123/world"
    assert REPLICA.listing_api_url() == "http://127.0.0.1:8123/userApi/categoryNewsList"
    assert TASS.article_url("sport", 7) == "https://tass.com/sports/7"


def test_endpoints_are_their_own_canonical_form() -> None:
    for site in (TASS, REPLICA):
        for url in (
            site.listing_api_url(),
            site.rss_url(),
            site.sitemap_index_url(),
            site.robots_url(),
            site.section_url("politics"),
        ):
            assert site.canonical(url) == url


def test_sections_table() -> None:
    assert SECTIONS["defense"] == 4953
    assert SECTIONS["sports"] == 4869
    assert len(SECTIONS) == 9
    assert SECTION_ALIASES == {"sport": "sports"}
