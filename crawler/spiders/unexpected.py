"""Spider middleware: an exception nobody expected while handling a response is a failure.

Scrapy logs an exception a callback raises and lets the request go: the frontier then
acknowledges it with nothing stored and nothing recorded, and the URL is lost in silence (a
page nested deeper than Python's recursion limit did that). Here any exception that leaves a
callback, or a spider middleware working on its output, becomes what every other failed page
is: ``spider.handling_failed(response, exc)``, the ``PageFailure`` of the URL the frontier asked
for with reason ``extraction_error:<exception type>`` (in ``failures``, in the run report, and a
dead letter that ``scrapy replay`` can queue again), logged with its traceback.

Installed first on the engine side (``SPIDER_MIDDLEWARES``, order 10), so it sees what every
other middleware lets through. What the callback yielded before it raised has gone on already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from crawler.items import PageFailure


@runtime_checkable
class RecordsFailures(Protocol):
    """What this middleware needs of a spider (``TassSpider`` implements it)."""

    def handling_failed(self, response: Response, exc: BaseException) -> PageFailure:
        """The recorded failure of the URL ``response`` answered, for ``exc``."""
        ...


class UnexpectedErrorMiddleware:
    """Turns an exception raised while handling a response into that URL's failure."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_spider_exception(
        self, response: Response, exception: Exception, spider: Spider | None = None
    ) -> list[PageFailure] | None:
        owner: object = self.crawler.spider
        if not isinstance(owner, RecordsFailures):
            return None
        return [owner.handling_failed(response, exception)]
