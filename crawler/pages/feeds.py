"""Feeds: the RSS feed (spec §6), the sitemap index and the news sitemaps (spec §7).

XML is parsed by lxml with a safe parser: no network, no entity expansion, no huge trees.
Element names are matched by local name, so a namespace (or none) makes no difference.
Entries whose link is out of scope are dropped; links are made canonical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml import etree

from crawler.pages.errors import ExtractionError
from crawler.pages.hints import rss_hint
from crawler.text import clean_text, parse_iso, site_time
from crawler.urls import SiteUrls


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One RSS item."""

    url: str
    title: str
    published: datetime | None
    description: str | None = None
    """The item's ``description`` (the lead; ``""``: none), None when it has none at all."""
    category: str | None = None
    """The item's first ``category``, if any."""

    def hint(self) -> dict[str, Any]:
        """What this item says of its article (``crawler.pages.hints``)."""
        return rss_hint(
            title=self.title,
            description=self.description,
            category=self.category,
            date=self.published,
        )


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    """One ``<url>`` of a sitemap."""

    url: str
    lastmod: datetime | None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, recover=False
    )


def parse_xml(body: bytes | str, what: str) -> etree._Element:
    """The document's root element; ``ExtractionError("bad_xml")`` when it is not XML."""
    data = body.encode() if isinstance(body, str) else body
    if not data.strip():
        raise ExtractionError("bad_xml", f"empty {what}")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise ExtractionError("bad_xml", f"{what} is not well-formed XML: {exc}") from None
    if root is None:
        raise ExtractionError("bad_xml", f"{what} has no root element")
    return root


def _local(el: etree._Element) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el.iter() if _local(c) == name]


def _child_text(el: etree._Element, name: str) -> str | None:
    for child in el:
        if _local(child) == name:
            return clean_text("".join(str(t) for t in child.itertext()))
    return None


def parse_rfc822(value: str | None) -> datetime | None:
    """``Wed, 07 Oct 2026 16:46:35 +0300`` → aware UTC datetime; None when unusable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return site_time(parsed)[0]


def parse_lastmod(value: str | None) -> datetime | None:
    """A W3C datetime (or a bare date, taken as Moscow midnight) → aware UTC datetime."""
    if not value:
        return None
    if len(value) == 10:
        value += "T00:00:00+03:00"
    return parse_iso(value)


class RssPage:
    """``/rss/v2.xml``."""

    def __init__(self, url: str, body: bytes | str, urls: SiteUrls) -> None:
        self.url = url
        self.urls = urls
        self.root = parse_xml(body, "RSS feed")
        if _local(self.root) not in ("rss", "RDF", "feed"):
            raise ExtractionError("bad_xml", f"not an RSS feed: <{_local(self.root)}>")

    def entries(self) -> list[FeedEntry]:
        """In-scope items in feed order, one per URL."""
        out: list[FeedEntry] = []
        seen: set[str] = set()
        for item in _children(self.root, "item"):
            link = _child_text(item, "link") or _child_text(item, "guid")
            url = self.urls.canonical(link, self.url) if link else None
            if url is None or url in seen:
                continue
            seen.add(url)
            out.append(
                FeedEntry(
                    url=url,
                    title=_child_text(item, "title") or "",
                    published=parse_rfc822(_child_text(item, "pubDate")),
                    description=_child_text(item, "description"),
                    category=_child_text(item, "category"),
                )
            )
        return out


class SitemapIndexPage:
    """``/sitemap.xml``: the list of sitemap files."""

    def __init__(self, url: str, body: bytes | str, urls: SiteUrls) -> None:
        self.url = url
        self.urls = urls
        self.root = parse_xml(body, "sitemap index")
        if _local(self.root) != "sitemapindex":
            raise ExtractionError("bad_xml", f"not a sitemap index: <{_local(self.root)}>")

    def sitemaps(self) -> list[str]:
        """Canonical in-scope sitemap URLs, in order, one each."""
        out: list[str] = []
        for sitemap in _children(self.root, "sitemap"):
            loc = _child_text(sitemap, "loc")
            url = self.urls.canonical(loc, self.url) if loc else None
            if url is not None and url not in out:
                out.append(url)
        return out


class SitemapPage:
    """``/sitemap/sitemap_newsN.xml``: article URLs with their ``lastmod``."""

    def __init__(self, url: str, body: bytes | str, urls: SiteUrls) -> None:
        self.url = url
        self.urls = urls
        self.root = parse_xml(body, "sitemap")
        if _local(self.root) != "urlset":
            raise ExtractionError("bad_xml", f"not a sitemap urlset: <{_local(self.root)}>")

    def entries(self) -> list[SitemapEntry]:
        """In-scope entries in order, one per URL."""
        out: list[SitemapEntry] = []
        seen: set[str] = set()
        for node in _children(self.root, "url"):
            loc = _child_text(node, "loc")
            url = self.urls.canonical(loc, self.url) if loc else None
            if url is None or url in seen:
                continue
            seen.add(url)
            out.append(SitemapEntry(url=url, lastmod=parse_lastmod(_child_text(node, "lastmod"))))
        return out
