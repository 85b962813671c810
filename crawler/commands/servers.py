"""The servers a command works with: the configured ones, or the embedded pair a local crawl
uses (``crawler.addons``'s rule: both ``REDIS_URL`` and ``MONGO_URI`` empty → the servers under
``TASS_DATA_DIR``, started if none runs, stopped when their last user leaves)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from scrapy.exceptions import UsageError
from scrapy.settings import Settings

from crawler import defaults
from crawler.embedded import EmbeddedServerError, LocalServices

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def servers(settings: Settings) -> Iterator[dict[str, str]]:
    """Fill ``REDIS_URL`` and ``MONGO_URI`` in ``settings`` as a crawl would; yields the
    environment a child process needs to reach the same servers (empty when configured)."""
    redis_url, mongo_uri = settings.get("REDIS_URL"), settings.get("MONGO_URI")
    if redis_url and mongo_uri:
        yield {}
        return
    if redis_url or mongo_uri:
        missing = "MONGO_URI" if redis_url else "REDIS_URL"
        raise UsageError(
            f"{missing} is empty while the other server is set: set both to use your "
            "servers, or neither to use the embedded ones",
            print_help=False,
        )
    root = Path(settings.get("TASS_DATA_DIR") or defaults.TASS_DATA_DIR)
    local = LocalServices(root)
    try:
        redis, mongo, started = local.acquire()
    except (EmbeddedServerError, ImportError) as exc:
        raise UsageError(f"cannot start the embedded servers: {exc}", print_help=False) from exc
    logger.info("%s the embedded servers under %s", "Started" if started else "Using", root)
    for name, url in (("REDIS_URL", redis.url), ("MONGO_URI", mongo.url)):
        settings.set(name, url, priority="cmdline")
    try:
        yield {"REDIS_URL": redis.url, "MONGO_URI": mongo.url}
    finally:
        local.release()
