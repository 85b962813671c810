"""One place that builds the Redis client from settings (``REDIS_URL``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


def redis_from_settings(settings: BaseSettings) -> redis.Redis:
    url = settings.get("REDIS_URL")
    if not url:
        raise ValueError(
            "REDIS_URL is empty: set it, or leave both REDIS_URL and MONGO_URI empty so the "
            "crawl starts embedded servers (needs the 'embedded' extra)"
        )
    try:
        return redis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30
        )
    except ValueError as exc:
        raise ValueError(f"REDIS_URL={url!r} is malformed: {exc}") from exc
