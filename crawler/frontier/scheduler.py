"""scrapy-redis's scheduler with our keys, JSON requests and dedupe, and no way to wipe state.

scrapy-redis deletes the shared queue and seen-set when any worker closes with
``SCHEDULER_PERSIST=False``, pickles requests, and records an article as seen even when its
fetch then fails for good. Here: the queue and the seen state always persist; requests are JSON;
an article whose fetch ended in a recorded failure is forgotten by the seen bitmap, so the next
run that meets its link tries it again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy_redis.scheduler import Scheduler

from crawler.frontier import serializer
from crawler.frontier.dupefilter import TassDupeFilter
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import redis_from_settings
from crawler.items import PageFailure

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class TassScheduler(Scheduler):  # type: ignore[misc]
    """The shared frontier: a Redis priority queue plus ``TassDupeFilter``."""

    crawler: Crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        keys = FrontierKeys(settings.get("TASS_REDIS_PREFIX", "tass"))
        server = redis_from_settings(settings)
        server.ping()
        if not settings.getbool("SCHEDULER_PERSIST", True):
            logger.warning("SCHEDULER_PERSIST=False is ignored: the frontier is shared state")
        instance = cls(
            server=server,
            persist=True,
            flush_on_start=False,
            queue_key=keys.requests,
            queue_cls="scrapy_redis.queue.PriorityQueue",
            idle_before_close=0,
            serializer=serializer,
        )
        instance.stats = crawler.stats
        instance.crawler = crawler
        instance.keys = keys
        crawler.signals.connect(instance.item_scraped, signal=signals.item_scraped)
        return instance

    def open(self, spider: Spider) -> Any:
        self.df = TassDupeFilter(
            self.server, self.keys, self.crawler, getattr(spider, "max_articles", 0) or 0
        )
        return super().open(spider)

    def close(self, reason: str) -> None:
        """Leave the queue and seen state to the other workers and to the next run."""

    def flush(self) -> None:  # pragma: no cover - guard against scrapy-redis code paths
        raise RuntimeError("the shared frontier is never flushed by a worker")

    def item_scraped(self, item: Any) -> None:
        if isinstance(item, PageFailure) and item.article_id is not None:
            self.df.forget_article(item.article_id)
