"""One place that builds the (asyncio) Redis client, from ``REDIS_URL``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

EMPTY_URL = (
    "REDIS_URL is empty: set it, or leave both REDIS_URL and MONGO_URI empty so the crawl "
    "starts embedded servers (needs the 'embedded' extra)"
)


def redis_url(settings: BaseSettings) -> str:
    url = settings.get("REDIS_URL")
    if not url:
        raise ValueError(EMPTY_URL)
    if not str(url).startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"REDIS_URL={url!r} is malformed: expected redis://host:port/db")
    return str(url)


def open_redis(url: str) -> Redis:
    """A client whose calls give up within seconds when Redis is away (callers retry)."""
    return Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15
    )
