"""Saved-page cases: every page object against ``tests/pages/cases/<name>/``, field by field.

A case folder holds the body as served (``input.*``), ``meta.json`` (``url``, ``base``,
``page`` and, where the server declared one, ``encoding``) and ``expected.json``. Each
(case, field) pair is its own test, so a failure names both. ``{"error": reason}`` expects an
``ExtractionError`` with that reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crawler.pages import (
    ArticlePage,
    ExtractionError,
    HubPage,
    ListingPage,
    RssPage,
    SitemapIndexPage,
    SitemapPage,
    next_cursor,
)
from crawler.urls import SiteUrls

CASES = Path(__file__).parent / "cases"


def _plain(value: Any) -> Any:
    """JSON-shaped: datetimes as ISO strings, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _plain_dict(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _plain(value)
    return out


def load(folder: Path) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    body = next(folder.glob("input.*")).read_bytes()
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    return meta, body, expected


def extract(meta: dict[str, Any], body: bytes) -> dict[str, Any]:
    """What the page object of ``meta["page"]`` makes of the body, JSON-shaped."""
    urls = SiteUrls(meta["base"])
    url = meta["url"]
    page = meta["page"]
    if page == "article":
        return _plain_dict(
            ArticlePage(url, body, urls, encoding=meta.get("encoding")).to_item().to_dict()
        )
    if page == "hub":
        hub = HubPage(url, body, urls, encoding=meta.get("encoding"))
        return {
            "section_id": hub.section_id(),
            "article_links": hub.article_links(),
            "hub_links": hub.hub_links(),
        }
    if page == "listing":
        listing = ListingPage(url, body, urls)
        cursor = next_cursor(listing.entries, listing.last_time, [])
        return _plain_dict(
            {
                "entries": [
                    {"id": e.id, "url": e.url, "date": e.date, "title": e.title}
                    for e in listing.entries
                ],
                "last_time": listing.last_time,
                "next_cursor": list(cursor) if cursor is not None else None,
            }
        )
    if page == "rss":
        entries = RssPage(url, body, urls).entries()
        return _plain_dict(
            {
                "entries": [
                    {"url": e.url, "title": e.title, "published": e.published} for e in entries
                ]
            }
        )
    if page == "sitemap_index":
        return {"sitemaps": SitemapIndexPage(url, body, urls).sitemaps()}
    if page == "sitemap":
        entries_ = SitemapPage(url, body, urls).entries()
        return _plain_dict({"entries": [{"url": e.url, "lastmod": e.lastmod} for e in entries_]})
    raise AssertionError(f"unknown page kind {page!r}")


def _params() -> list[Any]:
    params = []
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir()):
        expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        fields = ["error"] if "error" in expected else sorted(expected)
        params += [pytest.param(folder, f, id=f"{folder.name}:{f}") for f in fields]
    return params


_cache: dict[Path, dict[str, Any] | ExtractionError] = {}


def _result(folder: Path) -> dict[str, Any] | ExtractionError:
    if folder not in _cache:
        meta, body, _expected = load(folder)
        try:
            _cache[folder] = extract(meta, body)
        except ExtractionError as exc:
            _cache[folder] = exc
    return _cache[folder]


@pytest.mark.parametrize(("folder", "field"), _params())
def test_case_field(folder: Path, field: str) -> None:
    _meta, _body, expected = load(folder)
    result = _result(folder)
    if field == "error":
        assert isinstance(result, ExtractionError), f"expected {expected['error']}, got an item"
        assert result.reason == expected["error"]
        return
    assert not isinstance(result, ExtractionError), f"{result.reason}: {result.detail}"
    assert result[field] == expected[field]


def test_cases_cover_every_page_kind() -> None:
    kinds = {json.loads((p / "meta.json").read_text())["page"] for p in CASES.iterdir()}
    assert kinds >= {"article", "hub", "listing", "rss", "sitemap_index", "sitemap"}
    articles = [
        json.loads((p / "expected.json").read_text())
        for p in CASES.iterdir()
        if json.loads((p / "meta.json").read_text())["page"] == "article"
    ]
    assert {a["kind"] for a in articles if "kind" in a} >= {
        "news",
        "article",
        "interview",
        "opinion",
        "gallery",
    }
    assert {a["error"] for a in articles if "error" in a} >= {
        "truncated",
        "not_an_article",
        "empty_body",
    }


def test_saved_articles_cover_every_markup_variant() -> None:
    """Every feature ``save_case.FEATURES`` knows (kinds, Read-also/mark/caption variants…)."""
    from tests.pages.save_case import FEATURES

    covered: set[str] = set()
    for meta_file in CASES.glob("*/meta.json"):
        covered |= set(json.loads(meta_file.read_text()).get("covers", []))
    assert set(FEATURES) - covered == set()
