"""Article links this worker already knows were queued: dropped before they cost anything.

Most links on an article page ("Read also", the same tags, the feeds seen again) point to
articles already queued. The frontier would refuse them, but only after each one went through
Scrapy's middlewares, the engine, encoding and a Redis script. This worker keeps a copy of the
cluster's seen-articles bitmap (refreshed every few seconds by the run lifecycle) plus the ids
it queued itself since, and a spider middleware drops ordinary article requests for those ids
as they leave the callback. Refreshes (recent or changed articles), redirects, retries and
``dont_filter`` requests always go through; a stale copy only lets a few more through, and
the bitmap in Redis still decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class KnownArticles:
    """A local, possibly stale, subset of the article ids the cluster has queued."""

    def __init__(self) -> None:
        self.snapshot = b""
        self.mine: set[int] = set()

    def replace(self, snapshot: bytes) -> None:
        """A fresh copy of the Redis bitmap (it holds everything this worker queued)."""
        self.snapshot = snapshot
        self.mine.clear()

    def add(self, article_id: int) -> None:
        self.mine.add(article_id)

    def __contains__(self, article_id: int) -> bool:
        if article_id in self.mine:
            return True
        byte = article_id >> 3
        # Redis bitmaps number bits from the most significant bit of each byte.
        return byte < len(self.snapshot) and bool(self.snapshot[byte] & (0x80 >> (article_id & 7)))


def droppable(request: Request) -> int | None:
    """The article id of an ordinary article request the frontier would deduplicate."""
    article_id = request.meta.get("article_id")
    if (
        not isinstance(article_id, int)
        or request.dont_filter
        or request.meta.get("refresh")
        or request.meta.get("redirect_times")
    ):
        return None
    return article_id


class KnownArticlesMiddleware:
    """Spider middleware: drops requests for articles this worker knows are queued."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _known(self) -> KnownArticles | None:
        from crawler.frontier.scheduler import frontier_scheduler

        scheduler = frontier_scheduler(self.crawler)
        return scheduler.known if scheduler is not None else None

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
