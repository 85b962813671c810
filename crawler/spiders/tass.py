"""The ``tass`` spider: which URLs to follow, in what order, and how far back.

Discovery, by request type:

| type            | found on                          | callback           | priority |
|-----------------|-----------------------------------|--------------------|----------|
| article         | listings, feeds, sitemaps, links  | ``parse_article``  | 100      |
| listing API     | section and theme pages, itself   | ``parse_listing``  | 50       |
| hub             | seeds, nav, theme and tag links   | ``parse_hub``      | 40       |
| RSS             | seed                              | ``parse_rss``      | 60       |
| sitemap index   | seed                              | ``parse_sitemaps`` | 10       |
| news sitemap    | sitemap index                     | ``parse_sitemap``  | 10       |

Articles come first so the queue stays short. Fields are extracted by the page objects in
``crawler.pages``; whether this worker seeds a run, when the crawl is over and which parameters a
run has is decided by ``crawler.frontier.lifecycle`` (the spider implements its ``RunSpider``
protocol). The spider touches neither Redis nor MongoDB.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import JsonRequest, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError

from crawler import defaults
from crawler.frontier.feed import FeedEntry, fed_kind
from crawler.frontier.lifecycle import RunScope
from crawler.items import ArticleItem, PageFailure
from crawler.pages import (
    ArticlePage,
    ExtractionError,
    HubPage,
    ListingPage,
    RssPage,
    SitemapIndexPage,
    SitemapPage,
    listing_request_body,
    next_cursor,
)
from crawler.params import CrawlParams, ParamDefaults, parse_mode
from crawler.urls import SECTIONS, SiteUrls

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

PRIORITY = {"article": 100, "rss": 60, "listing": 50, "hub": 40, "sitemap": 10}


class TassSpider(Spider):
    """Crawls tass.com (or the replica at ``TASS_BASE_URL``) into article items.

    It implements the frontier's ``RunSpider`` protocol: ``mode`` and ``run_args`` (from
    ``-a``), ``seed_requests(params)`` and ``enter_run(scope)``. The run lifecycle owns the run
    parameters and hands each run's ``RunScope`` here; every callback reads the scope it
    started with (``run = self.run``), so a new run never changes parameters under it.
    """

    name = "tass"

    def __init__(self, mode: str = "crawl", **kwargs: Any) -> None:
        args: dict[str, Any] = {
            k: kwargs.pop(k) for k in ("since", "sections", "max_articles", "seeds") if k in kwargs
        }
        super().__init__(**kwargs)
        self.mode = parse_mode(mode)
        self.run_args: Mapping[str, Any] = MappingProxyType(args)
        self.urls = SiteUrls(defaults.TASS_BASE_URL)
        self.listing_limit = defaults.TASS_LISTING_LIMIT
        # Until the lifecycle hands it a run: the requested arguments, validated now so that a
        # malformed one stops the crawl before it starts.
        self.run = RunScope("", ParamDefaults().params(args))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.urls = SiteUrls(settings.get("TASS_BASE_URL", defaults.TASS_BASE_URL))
        spider.listing_limit = settings.getint("TASS_LISTING_LIMIT", defaults.TASS_LISTING_LIMIT)
        spider.run = RunScope("", ParamDefaults.from_settings(settings).params(spider.run_args))
        return spider

    def enter_run(self, scope: RunScope) -> None:
        """Work on the run ``scope`` (the run lifecycle's; callbacks started before keep theirs)."""
        self.run = scope

    async def start(self) -> AsyncIterator[Any]:
        """Seeds are queued by the run lifecycle (once per run, by one worker), not here."""
        nothing: tuple[Request, ...] = ()
        for request in nothing:
            yield request

    # --- seeds ----------------------------------------------------------------------------
    def seed_requests(self, params: CrawlParams) -> Iterator[Request]:
        """The entry points of a run: section pages, and for a whole-site run also the home
        page (themes, tags), RSS and the sitemaps; none for ``seeds=none`` (fed URLs only)."""
        if not params.seeds:
            return
        slugs = params.sections or tuple(SECTIONS)
        for slug in slugs:
            yield self.hub_request(self.urls.section_url(slug))
        if params.sections:
            return
        yield self.hub_request(f"{self.urls.base}/")
        yield self.rss_request(self.urls.rss_url())
        yield self.sitemap_request(self.urls.sitemap_index_url(), index=True)

    # --- request builders -----------------------------------------------------------------
    def hub_request(self, url: str) -> Request:
        return Request(
            url,
            callback=self.parse_hub,
            errback=self.on_error,
            priority=PRIORITY["hub"],
            meta={"kind": "hub"},
        )

    def rss_request(self, url: str) -> Request:
        return Request(
            url,
            callback=self.parse_rss,
            errback=self.on_error,
            priority=PRIORITY["rss"],
            meta={"kind": "rss"},
        )

    def sitemap_request(self, url: str, *, index: bool) -> Request:
        return Request(
            url,
            callback=self.parse_sitemaps if index else self.parse_sitemap,
            errback=self.on_error,
            priority=PRIORITY["sitemap"],
            meta={"kind": "sitemap"},
        )

    def article_request(
        self, url: str, params: CrawlParams, *, refresh: bool = False
    ) -> Request | None:
        """A request for an article URL in the run's scope, or None (out of scope). A refresh
        fetches an article again (recent, or changed) even if an earlier run fetched it."""
        article_id = self.urls.article_id(url)
        if article_id is None:
            return None
        section = self.urls.section_of(url) or ""
        if not params.in_scope(section):
            self._stat("tass/skipped/out_of_sections")
            return None
        return self._article_request(url, article_id, refresh=refresh)

    def _article_request(self, url: str, article_id: int, *, refresh: bool) -> Request:
        return Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            priority=PRIORITY["article"],
            meta={"kind": "article", "article_id": article_id, "refresh": refresh},
        )

    def listing_request(
        self,
        section_id: int,
        timestamp: int | None = None,
        exclude: Iterable[int] = (),
        head: int | None = None,
    ) -> Request:
        """A page of a feed of the listing API; ``head`` is the newest item of its first page."""
        exclude = list(exclude)
        meta: dict[str, Any] = {"kind": "listing", "section_id": section_id, "exclude": exclude}
        if head is not None:
            meta["head"] = head
        return JsonRequest(
            self.urls.listing_api_url(),
            data=listing_request_body(section_id, self.listing_limit, timestamp, exclude),
            callback=self.parse_listing,
            errback=self.on_error,
            priority=PRIORITY["listing"],
            meta=meta,
        )

    def fed_request(self, entry: FeedEntry) -> Request:
        """The request for a URL fed on ``start_urls`` (``crawler.frontier.feed``): whatever the
        run's sections, first in the queue; an article is fetched again even if stored, and its
        links are not followed (a fed hub, feed or sitemap leads on as any other).
        ``FeedRejected`` for a URL that is not one of the site's pages."""
        url, kind = fed_kind(self.urls, entry.url)
        article_id = self.urls.article_id(url)
        if kind == "article" and article_id is not None:
            request = self._article_request(url, article_id, refresh=True)
        elif kind == "hub":
            request = self.hub_request(url)
        elif kind == "rss":
            request = self.rss_request(url)
        else:
            request = self.sitemap_request(url, index=kind == "sitemap_index")
        request.meta.update({**entry.meta, "fed": True})
        return request.replace(priority=request.priority + defaults.FEED_PRIORITY)

    def follow_links(self, links: Iterable[str], params: CrawlParams) -> Iterator[Request]:
        """Requests for canonical links met on a page: articles, and hubs when in scope."""
        for url in links:
            kind = self.urls.url_kind(url)
            if kind == "article":
                request = self.article_request(url, params)
                if request is not None:
                    yield request
            elif kind == "section":
                if params.in_scope(first_segment(url)):
                    yield self.hub_request(url)
            elif kind == "theme_or_tag":
                if not params.sections:
                    yield self.hub_request(url)
            else:
                self._stat(f"tass/skipped/{kind}")

    # --- callbacks ------------------------------------------------------------------------
    def parse_hub(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        if not isinstance(response, TextResponse):
            yield self.failure(response.url, "not_text", f"{response.status} non-text hub")
            return
        page = HubPage(response.url, response.text, self.urls)
        section_id = page.section_id()
        if section_id is not None:
            yield self.listing_request(section_id)
        yield from self.follow_links(page.article_links(), run.params)
        yield from self.follow_links(page.hub_links(), run.params)

    def parse_listing(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        params = run.params
        try:
            page = ListingPage(response.url, response.body, self.urls)
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        section_id = int(response.meta["section_id"])
        feed = f"list:{section_id}"
        head = response.meta.get("head")
        if head is None and page.entries:
            head = int(max(e.date for e in page.entries).timestamp())
        # Page down to the floor (the feed's mark, or since) and through the re-check window;
        # items in the window are fetched again, to catch edits.
        floor = params.floor(feed)
        recheck_after = (
            datetime.fromtimestamp(head, UTC) - params.recheck
            if head is not None and params.incremental
            else None
        )
        stop_at = min((t for t in (floor, recheck_after) if t is not None), default=None)
        if floor is None:
            stop_at = None  # since=all: the whole feed
        for entry in page.entries:
            if stop_at is not None and entry.date < stop_at:
                continue
            refresh = recheck_after is not None and entry.date >= recheck_after
            if refresh or floor is None or entry.date >= floor:
                request = self.article_request(entry.url, params, refresh=refresh)
                if request is not None:
                    yield request
        complete = not page.entries or (
            stop_at is not None and any(e.date < stop_at for e in page.entries)
        )
        cursor = None
        if not complete:
            cursor = next_cursor(page.entries, page.last_time, response.meta.get("exclude", []))
        if cursor is None:
            # The feed was walked down to where this run needed it: its new high-water mark.
            if head is not None:
                run.marks.reach(feed, datetime.fromtimestamp(head, UTC))
            return
        timestamp, exclude = cursor
        yield self.listing_request(section_id, timestamp, exclude, head)

    def parse_rss(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        try:
            entries = RssPage(response.url, response.body, self.urls).entries()
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        yield from self.follow_links((e.url for e in entries), run.params)

    def parse_sitemaps(self, response: Response) -> Iterator[Request | PageFailure]:
        try:
            sitemaps = SitemapIndexPage(response.url, response.body, self.urls).sitemaps()
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        for url in sitemaps:
            yield self.sitemap_request(url, index=False)

    def parse_sitemap(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        try:
            entries = SitemapPage(response.url, response.body, self.urls).entries()
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        feed = f"sitemap:{urlsplit(response.url).path}"
        changed_after = run.params.changed_after(feed)
        for entry in entries:
            if changed_after is not None:
                # Incremental: what moved past the sitemap's mark is new or edited.
                if entry.lastmod is not None and entry.lastmod >= changed_after:
                    request = self.article_request(entry.url, run.params, refresh=True)
                    if request is not None:
                        yield request
            elif run.params.recent_enough(entry.lastmod):
                yield from self.follow_links([entry.url], run.params)
        dated = [e.lastmod for e in entries if e.lastmod is not None]
        if dated:
            run.marks.reach(feed, max(dated))

    def parse_article(self, response: Response) -> Iterator[Request | ArticleItem | PageFailure]:
        run = self.run
        url = self.urls.canonical(response.url) or response.url
        if not isinstance(response, TextResponse):
            yield self.failure(url, "not_text", "the article URL did not answer with text")
            return
        try:
            page = ArticlePage(url, response.text, self.urls)
            item = page.to_item()
        except ExtractionError as exc:
            yield self.failure(url, exc.reason, exc.detail, response.status)
            return
        yield item
        # Links of an article inside the window are followed; older articles reached through
        # "Read also" are stored but do not spread further, so a nightly run stays bounded. A
        # fed article is what its user asked for, and only that: its links are not followed.
        if run.params.recent_enough(item.published_at) and not response.meta.get("fed"):
            yield from self.follow_links(page.links(), run.params)

    def on_error(self, failure: Failure) -> Iterator[PageFailure]:
        request: Request = failure.request  # type: ignore[attr-defined]
        # Recorded under the URL that was asked for, not where its redirects ended.
        asked = (request.meta.get("redirect_urls") or [request.url])[0]
        url = self.urls.canonical(asked) or asked
        exc = failure.value
        status: int | None = None
        if isinstance(exc, HttpError):
            status = exc.response.status
            reason, detail = f"http_{status}", f"answered {status}"
        elif isinstance(exc, IgnoreRequest):
            text = str(exc)
            if "robots.txt" in text or "Forbidden by robots" in text:
                self._stat("tass/skipped/robots")
                return
            reason = "redirect_loop" if "redirect" in text.lower() else "ignored"
            if "DOWNLOAD_MAXSIZE" in text or "max size" in text.lower():
                reason = "too_large"
            detail = text
        else:
            name = type(exc).__name__
            text = str(exc)
            if "maxsize" in text.lower() or "max size" in text:
                reason = "too_large"
            elif "DataLoss" in name:
                reason = "truncated"  # the connection closed before Content-Length was met
            else:
                reason = f"network:{name}"
            detail = text or name
        attempts = int(request.meta.get("retry_times", 0)) + 1
        yield self.failure(url, reason, detail, status, attempts)

    # --- helpers --------------------------------------------------------------------------
    def failure(
        self,
        url: str,
        reason: str,
        detail: str = "",
        status: int | None = None,
        attempts: int = 1,
    ) -> PageFailure:
        self._stat(f"tass/failures/{reason}")
        logger.warning("Failure %s: %s (%s)", url, reason, detail[:200])
        return PageFailure(
            url=url,
            reason=reason,
            detail=detail[:1000],
            status=status,
            attempts=attempts,
            article_id=self.urls.article_id(url),
        )

    def _stat(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)


def first_segment(url: str) -> str:
    """The first path segment of a canonical URL (``politics`` of ``…/politics/123``)."""
    return urlsplit(url).path.strip("/").split("/", 1)[0]
