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

Articles come first so the queue stays short. In an incremental run every feed entry is a
*sighting* of its article (``crawler.frontier.versions``: a sitemap entry's ``lastmod``, a
listing or RSS item's title and date), put on the article request; the frontier decides from it
and the version it stored whether the article is fetched (new, changed, or re-checked), so how the
site cuts, names or orders its feeds makes no difference. Listing feeds are paged down to
``since``; sitemaps are read whole. Links found on a page that is not a listing (a hub or an
article page) are followed up to ``TASS_MAX_PAGE_LINKS`` a page, in page order, and each carries
its page (``codec.VIA_META``) so the frontier counts it against the run's
``TASS_MAX_RUN_LINKS``; a cut is counted into the run report and logged with the page's URL.
The listings (the listing API, RSS, the sitemaps) are the site's own paging and are not capped.

An article is always the one the frontier asked for: its id comes from the URL asked for
(``crawler.offsite.asked_url``), never from a redirect's target or the page's own ``og:url``;
a redirect to another page of the site fails the URL asked for (``redirected_away``), one to
another host never gets here (``crawler.offsite``). An exception nobody expected while a
response is handled becomes that URL's failure too (``handling_failed``, called by
``crawler.spiders.unexpected``).

Fields are extracted by the page objects in ``crawler.pages``; an article request made from a
listing API item or an RSS item carries what that item said of the article
(``codec.HINTS_META``: kept by the frontier by article id, handed back with the lease), and
``parse_article`` weighs it against the page's own signals. The extraction counts of every
article go to the run's counters (the ``run_counts`` signal). Whether this worker seeds a run,
when the crawl is over and which parameters a run has is decided by
``crawler.frontier.lifecycle`` (the spider implements its ``RunSpider`` protocol). The spider
touches neither Redis nor MongoDB.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.http import JsonRequest, Response, TextResponse

from crawler import defaults
from crawler.failure import is_robots_refusal, reason_of
from crawler.frontier import signals as frontier_signals
from crawler.frontier.codec import FAILED_META, HINTS_META, VIA_META
from crawler.frontier.feed import FED_META, FeedEntry, fed_kind
from crawler.frontier.lifecycle import RunScope
from crawler.frontier.versions import SIGHTING_META, Sighting
from crawler.items import ArticleItem, PageFailure
from crawler.offsite import asked_url
from crawler.pages import (
    ArticlePage,
    ExtractionError,
    FeedHints,
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
        self.max_page_links = defaults.TASS_MAX_PAGE_LINKS
        # Until the lifecycle hands it a run: the requested arguments, validated now so that a
        # malformed one stops the crawl before it starts.
        self.run = RunScope("", ParamDefaults().params(args))

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.urls = SiteUrls(settings.get("TASS_BASE_URL", defaults.TASS_BASE_URL))
        spider.listing_limit = settings.getint("TASS_LISTING_LIMIT", defaults.TASS_LISTING_LIMIT)
        spider.max_page_links = settings.getint("TASS_MAX_PAGE_LINKS", defaults.TASS_MAX_PAGE_LINKS)
        if spider.max_page_links <= 0:
            raise ValueError(f"TASS_MAX_PAGE_LINKS={spider.max_page_links}: must be > 0")
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
        self,
        url: str,
        params: CrawlParams,
        *,
        sighting: Callable[[int], Sighting] | None = None,
        hints: dict[str, Any] | None = None,
    ) -> Request | None:
        """A request for an article URL in the run's scope, or None (out of scope).
        ``sighting`` (an incremental run's feed entry, given the article id) lets the frontier
        fetch a known article again when the entry says it changed; ``hints`` are what a feed
        item said of the article."""
        article_id = self.urls.article_id(url)
        if article_id is None:
            return None
        section = self.urls.section_of(url) or ""
        if not params.in_scope(section):
            self._stat("tass/skipped/out_of_sections")
            return None
        meta: dict[str, Any] = {"kind": "article", "article_id": article_id}
        if sighting is not None:
            meta[SIGHTING_META] = sighting(article_id).to_meta()
        if hints:
            meta[HINTS_META] = hints
        return self._article_request(url, meta)

    def _article_request(self, url: str, meta: dict[str, Any]) -> Request:
        return Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            priority=PRIORITY["article"],
            meta=meta,
        )

    def listing_request(
        self, section_id: int, timestamp: int | None = None, exclude: Iterable[int] = ()
    ) -> Request:
        """A page of a feed of the listing API."""
        exclude = list(exclude)
        meta: dict[str, Any] = {"kind": "listing", "section_id": section_id, "exclude": exclude}
        return JsonRequest(
            self.urls.listing_api_url(),
            data=listing_request_body(section_id, self.listing_limit, timestamp, exclude),
            callback=self.parse_listing,
            errback=self.on_error,
            priority=PRIORITY["listing"],
            meta=meta,
        )

    def follow(self, url: str, params: CrawlParams) -> Request | None:
        """The request for a canonical link: an article, or a hub in scope; else None."""
        kind = self.urls.url_kind(url)
        if kind == "article":
            return self.article_request(url, params)
        if kind == "section":
            return self.hub_request(url) if params.in_scope(first_segment(url)) else None
        if kind == "theme_or_tag":
            return None if params.sections else self.hub_request(url)
        self._stat(f"tass/skipped/{kind}")
        return None

    def fed_request(self, entry: FeedEntry) -> Request:
        """The request for a URL fed on ``start_urls`` (``crawler.frontier.feed``): whatever the
        run's sections, first in the queue; an article is fetched again even if stored (a
        refresh, ``Push.refresh``), and its links are not followed (a fed hub, feed or sitemap
        leads on as any other). ``FeedRejected`` for a URL that is not one of the site's pages."""
        url, kind = fed_kind(self.urls, entry.url)
        article_id = self.urls.article_id(url)
        if kind == "article" and article_id is not None:
            request = self._article_request(url, {"kind": "article", "article_id": article_id})
        elif kind == "hub":
            request = self.hub_request(url)
        elif kind == "rss":
            request = self.rss_request(url)
        else:
            request = self.sitemap_request(url, index=kind == "sitemap_index")
        request.meta.update({**entry.meta, FED_META: True})
        return request.replace(priority=request.priority + defaults.FEED_PRIORITY)

    def follow_links(self, links: Iterable[str], params: CrawlParams) -> Iterator[Request]:
        """Requests for canonical links met in a listing: articles, and hubs when in scope."""
        for url in links:
            request = self.follow(url, params)
            if request is not None:
                yield request

    def follow_page_links(self, page: str, links: list[str], run: RunScope) -> Iterator[Request]:
        """Requests for the links of a hub or article ``page``: the first
        ``TASS_MAX_PAGE_LINKS`` in page order, each marked with its page for the run's cap."""
        taken = 0
        for position, url in enumerate(links):
            request = self.follow(url, run.params)
            if request is None:
                continue
            if taken == self.max_page_links:
                left = len(links) - position
                run.counters.count("tass/links/pages_cut")
                run.counters.count("tass/links/page_cut", left)
                logger.warning(
                    "Link cap: %s holds %d links; followed the first %d (TASS_MAX_PAGE_LINKS), "
                    "left %d unread",
                    page, len(links), taken, left,
                )  # fmt: skip
                return
            request.meta[VIA_META] = page
            taken += 1
            yield request

    # --- callbacks ------------------------------------------------------------------------
    def parse_hub(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        if not isinstance(response, TextResponse):
            yield self.failure(response.url, "not_text", f"{response.status} non-text hub")
            return
        page = HubPage(response.url, response.text, self.urls)
        section_id = page.section_id()
        articles, hubs = page.article_links(), page.hub_links()
        if section_id is None and not articles and not hubs:
            # No listing id, no article and no other hub linked: not a hub at all (a bot
            # challenge, a parked domain, an error page answered 200). Recorded: a run whose
            # every seed is one fails as the site not serving us (crawler.outcome).
            detail = f"{response.status} page with no section id, article or hub link"
            yield self.failure(response.url, "not_hub", detail, response.status)
            return
        if section_id is not None:
            yield self.listing_request(section_id)
        yield from self.follow_page_links(response.url, [*articles, *hubs], run)

    def parse_listing(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        params = run.params
        try:
            page = ListingPage(response.url, response.body, self.urls)
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        section_id = int(response.meta["section_id"])
        floor = params.since  # None: since=all, the whole feed
        for entry in page.entries:
            if floor is not None and entry.date < floor:
                continue
            request = self.article_request(
                entry.url,
                params,
                sighting=run_sighting(run, title=entry.title, date=entry.date),
                hints=entry.hint(),
            )
            if request is not None:
                yield request
        complete = not page.entries or (
            floor is not None and any(e.date < floor for e in page.entries)
        )
        cursor = None
        if not complete:
            cursor = next_cursor(page.entries, page.last_time, response.meta.get("exclude", []))
        if cursor is not None:
            timestamp, exclude = cursor
            yield self.listing_request(section_id, timestamp, exclude)

    def parse_rss(self, response: Response) -> Iterator[Request | PageFailure]:
        run = self.run
        try:
            entries = RssPage(response.url, response.body, self.urls).entries()
        except ExtractionError as exc:
            yield self.failure(response.url, exc.reason, exc.detail, response.status)
            return
        for entry in entries:
            if self.urls.url_kind(entry.url) == "article":
                request = self.article_request(
                    entry.url,
                    run.params,
                    sighting=run_sighting(run, title=entry.title, date=entry.published),
                    hints=entry.hint(),
                )
                if request is not None:
                    yield request
            else:
                yield from self.follow_links([entry.url], run.params)

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
        params = run.params
        for entry in entries:
            old = not params.recent_enough(entry.lastmod)
            if params.incremental and self.urls.url_kind(entry.url) == "article":
                # Every entry is a sighting: the frontier fetches what is new or changed (an
                # old entry only if it is known and changed).
                sighting = run_sighting(run, lastmod=entry.lastmod, sitemap=True, old=old)
                request = self.article_request(entry.url, params, sighting=sighting)
                if request is not None:
                    yield request
            elif not old:
                yield from self.follow_links([entry.url], params)

    def parse_article(self, response: Response) -> Iterator[Request | ArticleItem | PageFailure]:
        run = self.run
        url = self.asked(response)
        if not isinstance(response, TextResponse):
            yield self.failure(url, "not_text", "the article URL did not answer with text")
            return
        if self.urls.article_id(response.url) != self.urls.article_id(url):
            # Redirected to another page of the site: not the article asked for.
            detail = f"redirected to {response.url}"
            yield self.failure(url, "redirected_away", detail, response.status)
            return
        hints = FeedHints.from_value(response.meta.get(HINTS_META))
        try:
            page = ArticlePage(url, response.text, self.urls)
            extraction = page.extract(hints)
        except ExtractionError as exc:
            yield self.failure(url, exc.reason, exc.detail, response.status)
            return
        item = extraction.item
        meta = response.meta
        item.failed_before = bool(
            meta.get("retry_times") or meta.get(FAILED_META) or meta.get(FED_META)
        )
        self.crawler.signals.send_catch_log(
            signal=frontier_signals.run_counts, counts=extraction.counts()
        )
        yield item
        # Links of an article inside the window are followed; older articles reached through
        # "Read also" are stored but do not spread further, so a nightly run stays bounded. A
        # fed article is what its user asked for, and only that: its links are not followed.
        if run.params.recent_enough(item.published_at) and not response.meta.get(FED_META):
            yield from self.follow_page_links(url, page.links(), run)

    def on_error(self, failure: Failure) -> Iterator[PageFailure]:
        request: Request = failure.request  # type: ignore[attr-defined]
        url = self.asked(request)
        exc = failure.value
        assert exc is not None
        if is_robots_refusal(exc):
            self._stat("tass/skipped/robots")
            return
        reason, detail, status = reason_of(exc)
        attempts = int(request.meta.get("retry_times", 0)) + 1
        yield self.failure(url, reason, detail, status, attempts)

    def handling_failed(self, response: Response, exc: BaseException) -> PageFailure:
        """The failure of the URL asked for when handling ``response`` raised ``exc``, which
        nothing expected (``crawler.spiders.unexpected``): ``extraction_error:<type>``."""
        url = self.asked(response)
        name = type(exc).__name__
        logger.error("Unexpected %s while handling %s", name, url, exc_info=exc)
        retries = response.meta.get("retry_times", 0) if response.request is not None else 0
        return self.failure(
            url, f"extraction_error:{name}", f"{name}: {exc}", response.status, int(retries) + 1
        )

    # --- helpers --------------------------------------------------------------------------
    def asked(self, source: Request | Response) -> str:
        """The URL the frontier asked for (before any redirect), canonical where it can be:
        what a failure is recorded under and an article's id comes from."""
        request = source if isinstance(source, Request) else source.request
        url = asked_url(request) if request is not None else source.url
        return self.urls.canonical(url) or url

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


def run_sighting(
    run: RunScope,
    *,
    lastmod: datetime | None = None,
    title: str | None = None,
    date: datetime | None = None,
    sitemap: bool = False,
    old: bool = False,
) -> Callable[[int], Sighting] | None:
    """In an incremental run, the sighting a feed entry makes of its article (given its id);
    None in a backfill (articles are deduplicated by id alone)."""
    if not run.params.incremental:
        return None
    plan = run.params.recheck

    def of(article_id: int) -> Sighting:
        return Sighting.of(
            plan, run.run_id, article_id,
            lastmod=lastmod, title=title, date=date, sitemap=sitemap, old=old,
        )  # fmt: skip

    return of


def first_segment(url: str) -> str:
    """The first path segment of a canonical URL (``politics`` of ``…/politics/123``)."""
    return urlsplit(url).path.strip("/").split("/", 1)[0]
