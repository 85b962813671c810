"""``scrapy replay``: queue the dead letters again (URLs that kept failing).

Every URL that ended in the ``failures`` collection also left a dead letter in Redis with the
request that failed. This command puts those requests back in the shared queue (all of them,
or those whose reason starts with ``--reason``, or the given URLs); the next or current crawl
fetches them. ``--list`` only shows them.

``--from-mongo`` reads MongoDB's ``failures`` instead, for when Redis lost its dead letters (a
flush, a restart without persistence): the URLs are fed on ``<prefix>:start_urls``
(``crawler.frontier.recovery``), a pending retry (``--pending``: only those) with its retry
count, and their dead letters, if Redis still has them, are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler import defaults, mongo
from crawler.frontier import recovery
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import RedisFrontier
from crawler.frontier.redis import open_redis, redis_url
from crawler.mongo import Document, MongoConfig


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
        parser.add_argument(
            "--from-mongo", action="store_true",
            help="queue the URLs of MongoDB's failures (when Redis lost its dead letters)",
        )  # fmt: skip
        parser.add_argument(
            "--pending", action="store_true",
            help="with --from-mongo: only failures whose retry was pending",
        )  # fmt: skip

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            url = redis_url(self.settings)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        keys = FrontierKeys(self.settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX))
        if opts.pending and not opts.from_mongo:
            raise UsageError("--pending goes with --from-mongo", print_help=False)
        if opts.from_mongo:
            query = recovery.failures_query(pending=opts.pending, reason=opts.reason, urls=args)
            print(asyncio.run(self.from_mongo(url, keys, query, listing=opts.list)))
            return
        print(asyncio.run(self.replay(url, keys, args, opts.reason, listing=opts.list)))

    async def from_mongo(
        self, url: str, keys: FrontierKeys, query: Document, *, listing: bool
    ) -> str:
        assert self.settings is not None
        config = MongoConfig.from_settings(self.settings)
        end = time.monotonic() + config.retry_deadline
        if listing:
            docs = await mongo.retry(
                lambda: recovery.read(config, query), what="failures", deadline=lambda: end
            )
            lines = [
                f"{d.get('reason', ''):<28} {d.get('attempts', 0):>3}  "
                f"{'retry pending  ' if d.get('retry') else ''}{d['url']}"
                for d in docs
            ]
            return "\n".join([*lines, f"{len(docs)} failures in MongoDB"])
        client = open_redis(url)
        try:
            retries, fed = await recovery.requeue(client, keys, config, query, lambda: end)
        finally:
            await client.aclose()
        return (
            f"queued {retries} pending retries as they were, and fed {fed} URLs of "
            f"MongoDB's failures on {keys.start_urls}"
        )

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
