"""Nothing from another host: one site rule for every request and every redirect.

Scrapy's own ``OffsiteMiddleware`` compares host names only (a second port on the same host,
such as ``tass.com:8443``, passes), lets ``dont_filter`` requests through (every retry and
replayed dead letter is one) and drops a refused request at scheduling time with a debug line;
its redirect middlewares follow a ``Location`` or a ``<meta http-equiv=refresh>`` to any host.
Here the rule is ``SiteUrls.on_site`` (the site's host or ``www.`` of it, on the site's port:
the rule the spider's links are made canonical by), and a refusal is an error of the request
that was asked for, so the spider records it as that URL's failure (in ``failures``, with a
dead letter that replays that URL, never the other host's):

- ``SiteOnlyMiddleware`` (downloader, first in the chain): a request for another host is never
  sent (``OffsiteRequest``, reason ``offsite``).
- ``SiteRedirectMiddleware`` and ``SiteMetaRefreshMiddleware``: Scrapy's 3xx and meta-refresh
  redirects, except that one to another host is refused before it is queued or fetched
  (``OffsiteRedirect``, reason ``offsite_redirect``): the request that was redirected fails.

``asked_url(request)`` is the URL the frontier asked for, before any redirect: what a failure is
recorded under and what an article's id comes from.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Self

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import IgnoreRequest

from crawler import defaults
from crawler.urls import SiteUrls

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector


class OffsiteRequest(IgnoreRequest):
    """A request for a URL that is not on the site: refused, never sent."""

    reason = "offsite"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(detail)
        self.url = url


class OffsiteRedirect(OffsiteRequest):
    """A redirect (3xx or meta refresh) to another host: the redirected request fails."""

    reason = "offsite_redirect"


def site_of(settings: BaseSettings) -> SiteUrls:
    """The site's URL rules for these settings (``TASS_BASE_URL``)."""
    return _site(settings.get("TASS_BASE_URL") or defaults.TASS_BASE_URL)


@functools.lru_cache(maxsize=8)
def _site(base: str) -> SiteUrls:
    return SiteUrls(base)


def asked_url(request: Request) -> str:
    """The URL the frontier asked for: the first of a redirect chain, else the request's."""
    return str((request.meta.get("redirect_urls") or [request.url])[0])


def _count(stats: StatsCollector | None, key: str) -> None:
    if stats is not None:
        stats.inc_value(key)


class SiteOnlyMiddleware:
    """Downloader middleware: a request for another host is refused (``OffsiteRequest``)."""

    def __init__(self, site: SiteUrls, stats: StatsCollector | None) -> None:
        self.site = site
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(site_of(crawler.settings), crawler.stats)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if not self.site.on_site(request.url):
            _count(self.stats, "tass/offsite/refused")
            raise OffsiteRequest(request.url, f"{request.url} is not on {self.site.base}")


def refuse_offsite(
    result: Request | Response, request: Request, crawler: Crawler
) -> Request | Response:
    """``result`` of a redirect middleware for ``request``, unless it redirects off the site."""
    site = site_of(crawler.settings)
    if isinstance(result, Request) and not site.on_site(result.url):
        _count(crawler.stats, "tass/offsite/redirects_refused")
        reasons = result.meta.get("redirect_reasons") or ["redirect"]
        raise OffsiteRedirect(
            result.url,
            f"{request.url} redirected ({reasons[-1]}) to {result.url}, not on {site.base}",
        )
    return result


class SiteRedirectMiddleware(RedirectMiddleware):
    """Scrapy's 3xx redirects, on the site only (module docstring)."""

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        return refuse_offsite(super().process_response(request, response), request, self.crawler)


class SiteMetaRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's ``<meta http-equiv=refresh>`` redirects, on the site only (module docstring)."""

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        return refuse_offsite(super().process_response(request, response), request, self.crawler)
