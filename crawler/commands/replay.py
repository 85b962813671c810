"""``scrapy replay``: queue the dead letters again (URLs that kept failing).

Every URL that ended in the ``failures`` collection also left a dead letter in Redis with the
request that failed. This command puts those requests back in the shared queue (all of them,
or those whose reason starts with ``--reason``, or the given URLs); the next or current crawl
fetches them. ``--list`` only shows them.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler import defaults
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import RedisFrontier
from crawler.frontier.redis import open_redis, redis_url


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[options] [URL ...]"

    def short_desc(self) -> str:
        return "Queue the requests that kept failing (dead letters) again"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--reason", help="only dead letters whose reason starts with this")
        parser.add_argument("--list", action="store_true", help="list them, queue nothing")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            url = redis_url(self.settings)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        keys = FrontierKeys(self.settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
        print(asyncio.run(self.replay(url, keys, args, opts.reason, listing=opts.list)))

    async def replay(
        self, url: str, keys: FrontierKeys, urls: list[str], reason: str | None, *, listing: bool
    ) -> str:
        client = open_redis(url)
        try:
            queue = RedisFrontier(client, keys)
            letters = await queue.dead_letters()
            chosen: dict[str, dict[str, Any]] = {
                u: v
                for u, v in letters.items()
                if (not urls or u in urls) and (not reason or str(v["reason"]).startswith(reason))
            }
            if listing:
                lines = [f"{v['reason']:<28} {v['attempts']:>3}  {u}" for u, v in chosen.items()]
                return "\n".join([*lines, f"{len(chosen)} dead letters"])
            count = await queue.replay(list(chosen)) if chosen else 0
            return f"queued {count} dead letters again"
        finally:
            await client.aclose()
