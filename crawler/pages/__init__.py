"""Page objects: pure functions of (url, body) to an item, entries or links.

They make no requests, read no settings and stamp no crawl time; a page that cannot give what
is asked raises ``ExtractionError`` with a machine-readable ``reason``.
"""

from __future__ import annotations

from crawler.pages.article import ArticlePage
from crawler.pages.errors import ExtractionError
from crawler.pages.feeds import FeedEntry, RssPage, SitemapEntry, SitemapIndexPage, SitemapPage
from crawler.pages.hub import HubPage
from crawler.pages.listing import ListingEntry, ListingPage, listing_request_body, next_cursor

__all__ = [
    "ArticlePage",
    "ExtractionError",
    "FeedEntry",
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
