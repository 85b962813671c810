"""Spider middleware: drops requests for articles this worker knows are queued (``known``).

A thin adapter: the local copy of the seen-articles bitmap is the frontier core's
(``KnownArticles``), found through ``scheduler.frontier_of``; the rule of what may be dropped
is ``known.droppable``. What a dropped request carried from a feed (``codec.HINTS_META``) is
not dropped with it: it goes to the frontier's writes, to be kept by article id while the
article awaits its fetch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request

from crawler.frontier.codec import take_hints
from crawler.frontier.known import droppable
from crawler.frontier.scheduler import Frontier, frontier_of

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

    def _keep(self, frontier: Frontier | None, output: Any) -> bool:
        if frontier is None or not isinstance(output, Request):
            return True
        article_id = droppable(output)
        if article_id is None or article_id not in frontier.known:
            return True
        frontier.window.hint(article_id, take_hints(output))
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("tass/frontier/known_dropped")
        return False

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterator[Any]:
        frontier = frontier_of(self.crawler)
        return (output for output in result if self._keep(frontier, output))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        frontier = frontier_of(self.crawler)
        async for output in result:
            if self._keep(frontier, output):
                yield output
