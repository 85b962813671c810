"""Spider middleware: drops requests for articles this worker knows are queued (``known``).

A thin adapter: the local copy of the seen-articles bitmap is the frontier core's
(``KnownArticles``), found through ``scheduler.frontier_of``; the rule of what may be dropped
is ``known.droppable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request

from crawler.frontier.known import KnownArticles, droppable
from crawler.frontier.scheduler import frontier_of

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class KnownArticlesMiddleware:
    """Drops article requests that this worker knows the frontier would refuse."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _known(self) -> KnownArticles | None:
        frontier = frontier_of(self.crawler)
        return frontier.known if frontier is not None else None

    def _keep(self, known: KnownArticles | None, output: Any) -> bool:
        if known is None or not isinstance(output, Request):
            return True
        article_id = droppable(output)
        if article_id is None or article_id not in known:
            return True
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("tass/frontier/known_dropped")
        return False

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterator[Any]:
        known = self._known()
        return (output for output in result if self._keep(known, output))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        known = self._known()
        async for output in result:
            if self._keep(known, output):
                yield output
