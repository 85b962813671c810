"""Container health check for a worker: ``python -m crawler.health``.

Exit 0 while a crawl process on this host has published a heartbeat to Redis within
``--max-age`` seconds (default 60), 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from scrapy.utils.project import get_project_settings

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.redis import open_redis, redis_url
from crawler.frontier.run import RunCoordinator


async def heartbeat_age(url: str, prefix: str) -> float | None:
    client = open_redis(url)
    try:
        return await RunCoordinator(client, FrontierKeys(prefix)).heartbeat_age(
            socket.gethostname()
        )
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-age", type=float, default=60.0)
    args = parser.parse_args(argv)
    settings = get_project_settings()
    try:
        age = asyncio.run(heartbeat_age(redis_url(settings), settings.get("TASS_REDIS_PREFIX")))
    except Exception as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if age is None or age > args.max_age:
        print(f"unhealthy: no heartbeat from this host within {args.max_age:.0f}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
