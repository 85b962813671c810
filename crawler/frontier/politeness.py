"""The site's request budget, applied at the moment a request goes on the wire.

Every HTTP request a worker sends (robots.txt included) first waits for a place at the site
and a send time (``siteslots``, one ``lua.SITE`` call for both): at most ``CRAWL_CONCURRENCY``
requests of the cluster at the site at once, counting only requests actually there; none
inside a ``Retry-After`` pause, each at least ``1/CRAWL_RATE`` (10% under it, or robots.txt's
Crawl-delay) after the one before, never more than ``CRAWL_RATE`` in any second. Waiting here,
in the download handler, just before the request goes on the wire, means no queue in between
(robots.txt, the downloader's own slots) can bunch requests up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler

from crawler.frontier.scheduler import frontier_of
from crawler.frontier.siteslots import SiteSlots

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class BudgetedDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, sending each request only at a time the budget allows."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.crawler = crawler
        self.site: SiteSlots | None = None

    async def download_request(self, request: Request) -> Response:
        frontier = frontier_of(self.crawler)
        if frontier is None:
            return await super().download_request(request)
        if self.site is None:
            self.site = SiteSlots(frontier.queue, frontier.config.budget, frontier.worker_id)
        place = await self.site.enter()
        try:
            frontier.counters.count("tass/frontier/send_waits")
            if place is not None and place.passed:
                frontier.counters.count("tass/frontier/site_places_kept")
            return await super().download_request(request)
        finally:
            await self.site.leave(place)
