"""The zero-config local run: embedded Redis and MongoDB when none are configured.

With ``REDIS_URL`` and ``MONGO_URI`` both empty, the crawl starts (or reuses) the embedded
Valkey and SecantusDB servers under ``TASS_DATA_DIR`` (default ``.tass/``), says so in its log,
and the last local crawl process to finish stops them; their data stays for the next run. With
both set, it starts nothing. Setting only one of them is an error that names the other.
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Self

from scrapy import signals

from crawler import defaults
from crawler.embedded import LocalServices
from crawler.redact import redact

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)


class LocalServicesAddon:
    """Fills ``REDIS_URL`` and ``MONGO_URI`` with embedded servers when both are empty."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.services: LocalServices | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def update_settings(self, settings: Settings) -> None:
        redis_url, mongo_uri = settings.get("REDIS_URL"), settings.get("MONGO_URI")
        if redis_url and mongo_uri:
            return
        if redis_url or mongo_uri:
            missing = "MONGO_URI" if redis_url else "REDIS_URL"
            raise ValueError(
                f"{missing} is empty while the other server is set: set both to use your "
                "servers, or neither to run the embedded ones"
            )
        root = Path(settings.get("TASS_DATA_DIR") or defaults.TASS_DATA_DIR)
        self.services = LocalServices(root)
        redis, mongo, started = self.services.acquire()
        # The empty values came from settings.py (project priority); replace them at theirs.
        for name, url in (("REDIS_URL", redis.url), ("MONGO_URI", mongo.url)):
            settings.set(name, url, priority=settings.getpriority(name) or "addon")
        logger.info(
            "%s embedded servers (data in %s): Redis %s (pid %d), MongoDB %s (pid %d)",
            "Started" if started else "Reusing",
            root.resolve(),
            redact(redis.url),
            redis.pid,
            redact(mongo.url),
            mongo.pid,
        )
        self.crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)
        atexit.register(self.release)

    def engine_stopped(self) -> None:
        self.release()

    def release(self) -> None:
        if self.services is None:
            return
        services, self.services = self.services, None
        if services.release():
            logger.info("Stopped the embedded servers (no other local crawl uses them)")
