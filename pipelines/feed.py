"""The items feed: new and revised articles pushed, as they are stored, to a Redis stream.

Downstream programs read ``<TASS_REDIS_PREFIX>:items`` (``crawler.frontier.keys``) with
``XREAD`` (each reader on its own, from any point it remembers) or ``XREADGROUP`` (a consumer
group shares the entries and acknowledges them; an entry a consumer took and never
acknowledged stays pending, to be claimed again). Each entry has the fields ``event`` (``new``
or ``revised``), ``id``, ``revision`` and ``article``: the stored document as one JSON object,
the columns and ISO 8601 UTC times of ``scrapy export --format jsonl`` (``crawler.export``).

It listens to the store's ``article_stored`` signal (``pipelines.signals``), which the store
awaits before its items are acknowledged: an entry is in Redis before the request that
brought the article is acknowledged (a worker that dies in between fetches it again, and the
feed may then carry the version twice: readers deduplicate on ``id`` and ``revision``). One
batch's entries go in one pipelined round trip; a Redis outage is waited out with backoff
(``crawler.retrying``) for up to ``TASS_MONGO_RETRY_DEADLINE``, less once the crawler is
stopping, then the entries are given up (logged, ``tass/feed/lost``): the articles are stored,
and ``scrapy export --since`` gives them to a reader that missed them.

The stream is capped near ``TASS_FEED_MAXLEN`` entries (``XADD MAXLEN ~``): the Redis that
holds the feed holds the frontier too, and refuses writes when full (``noeviction``), so a feed
nobody reads must not grow without end. Off unless ``TASS_FEED_ENABLED``.

Why not scrapy-redis's ``RedisPipeline`` (the list variant; pinned in the ``bench`` extra):
it pushes every item that reaches it, with no way to tell a new version from an unchanged
re-fetch or a failure; it writes datetimes without their timezone; its ``process_item`` takes
the ``spider`` argument and returns a Deferred (both deprecated in Scrapy 2.19, errors under
this project's warnings policy); it gives up at the first Redis error; and its list grows
without a cap. So scrapy-redis stays out of the core dependencies.

Stats: ``tass/feed/pushed``, ``tass/feed/retries``, ``tass/feed/lost``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler import defaults, mongo
from crawler.export import json_line, row_of
from crawler.frontier.health import transient
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.retrying import RetryDeadlineExceeded, retry
from pipelines.signals import StoredArticle, article_stored

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class ItemsFeed:
    """Pushes each new article and revision to the items stream (module docstring)."""

    def __init__(self, crawler: Crawler, url: str, key: str, maxlen: int) -> None:
        self.crawler = crawler
        self.url = url
        self.key = key
        self.maxlen = maxlen
        self.deadline = crawler.settings.getfloat(
            "TASS_MONGO_RETRY_DEADLINE", defaults.TASS_MONGO_RETRY_DEADLINE
        )
        self.client: Redis | None = None
        self._shutdown = mongo.ShutdownClock.of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("TASS_FEED_ENABLED", defaults.TASS_FEED_ENABLED):
            raise NotConfigured("the items feed is off (TASS_FEED_ENABLED=false)")
        maxlen = settings.getint("TASS_FEED_MAXLEN", defaults.TASS_FEED_MAXLEN)
        if maxlen <= 0:
            raise ValueError(f"TASS_FEED_MAXLEN must be > 0, got {maxlen}")
        keys = FrontierKeys(settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
        feed = cls(crawler, redis_url(settings), keys.items_feed, maxlen)
        crawler.signals.connect(feed.article_stored, signal=article_stored)
        crawler.signals.connect(feed.spider_closed, signal=signals.spider_closed)
        return feed

    def _stat(self, name: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"tass/feed/{name}", count)

    async def article_stored(self, articles: list[StoredArticle]) -> None:
        if self.client is None:
            self.client = open_redis(self.url)
        client = self.client
        entries = [entry_of(article) for article in articles]

        async def push() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.xadd(self.key, entry, maxlen=self.maxlen, approximate=True)
                await pipe.execute()

        end = time.monotonic() + self.deadline
        try:
            await retry(
                push,
                what=f"items feed push of {len(entries)}",
                retry_on=transient,
                deadline=lambda: min(end, self._shutdown.deadline()),
                on_retry=lambda _exc: self._stat("retries"),
            )
        except RetryDeadlineExceeded as exc:
            self._stat("lost", len(entries))
            logger.error("Items feed: %d entries NOT pushed: %s", len(entries), exc)
            return
        self._stat("pushed", len(entries))

    async def spider_closed(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()


def entry_of(article: StoredArticle) -> dict[Any, Any]:
    """The stream entry of a stored version."""
    doc = article.doc
    return {
        "event": article.event,
        "id": doc["_id"],
        "revision": doc["revision"],
        "article": json_line(row_of(doc)).rstrip("\n"),
    }
