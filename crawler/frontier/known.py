"""Article links this worker already knows were queued: dropped before they cost anything.

Most links on an article page ("Read also", the same tags, the feeds seen again) point to
articles already queued. The frontier would refuse them, but only after each one went through
Scrapy's middlewares, the engine, encoding and a Redis script. This worker keeps a copy of the
cluster's seen-articles bitmap (refreshed every few seconds by the run lifecycle) plus the ids
it queued itself since, and a spider middleware (``middleware.KnownArticlesMiddleware``) drops
ordinary article requests for those ids as they leave the callback. A feed's sighting of an
article (``versions.SIGHTING_META``: it may be changed), redirects, retries and ``dont_filter``
requests always go through; a stale
copy only lets a few more through, and the bitmap in Redis still decides. Scrapy-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.frontier.versions import SIGHTING_META

if TYPE_CHECKING:
    from scrapy import Request


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
        or SIGHTING_META in request.meta
        or request.meta.get("redirect_times")
    ):
        return None
    return article_id
