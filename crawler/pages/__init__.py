"""Page objects: pure functions of (url, body) to an item, entries or links.

They make no requests, read no settings and stamp no crawl time; a page that cannot give what
is asked raises ``ExtractionError`` with a machine-readable ``reason``. An article's fields come
from ranked signals (``signals``), the page's own (``article``, ``photos``, ``structure``,
walked by ``tree``) and what feeds said of it (``hints``).
"""

from __future__ import annotations

from crawler.pages.article import ArticlePage, Extraction
from crawler.pages.errors import ExtractionError
from crawler.pages.feeds import FeedEntry, RssPage, SitemapEntry, SitemapIndexPage, SitemapPage
from crawler.pages.hints import FeedHints
from crawler.pages.hub import HubPage
from crawler.pages.listing import ListingEntry, ListingPage, listing_request_body, next_cursor

__all__ = [
    "ArticlePage",
    "Extraction",
    "ExtractionError",
    "FeedEntry",
    "FeedHints",
    "HubPage",
    "ListingEntry",
    "ListingPage",
    "RssPage",
    "SitemapEntry",
    "SitemapIndexPage",
    "SitemapPage",
    "listing_request_body",
    "next_cursor",
]
