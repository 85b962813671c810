"""``scrapy enqueue URL...``: feed URLs to the running workers, as ``redis-cli lpush
<prefix>:start_urls URL`` does (``crawler.frontier.feed``).

Each URL is checked first, by the rules the workers apply (a page of the site the crawler
reads: an article, a section, theme or tag page, the home page, the RSS feed, a sitemap); one
bad URL stops the command with a message naming it (exit 2) and nothing is queued. The URLs are
then pushed in one call, in the order given. A running worker takes them into the current run
within about a second, or (a standing ``-a mode=worker`` worker) begins a run for them; with no
worker running they wait for the next ``scrapy crawl tass``. Articles are fetched even if they
are already stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler import defaults
from crawler.frontier.config import FrontierConfig
from crawler.frontier.feed import FeedRejected, fed_kind, feed_urls, parse_payload
from crawler.frontier.redis import open_redis
from crawler.status import read_status
from crawler.urls import SiteUrls


class Command(ScrapyCommand):
    requires_project = True
    default_settings: ClassVar[dict[str, object]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[options] URL [URL ...]"

    def short_desc(self) -> str:
        return "Feed URLs to the workers (as LPUSH <prefix>:start_urls does)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--meta", default=None, help="a JSON object given to every URL's request as meta"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if not args:
            raise UsageError("name at least one URL", print_help=False)
        try:
            config = FrontierConfig.from_settings(self.settings)
            urls = SiteUrls(self.settings.get("TASS_BASE_URL", defaults.TASS_BASE_URL))
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from exc
        payloads = [self.payload(url, opts.meta, urls) for url in args]
        print(asyncio.run(self.push(config, payloads)))

    @staticmethod
    def payload(url: str, meta: str | None, urls: SiteUrls) -> str:
        """The start_urls entry for ``url``, checked as a worker will check it."""
        raw = url if meta is None else json.dumps({"url": url, "meta": _meta(meta)})
        try:
            fed_kind(urls, parse_payload(raw).url)
        except FeedRejected as exc:
            raise UsageError(f"{url!r}: {exc}", print_help=False) from exc
        return raw

    async def push(self, config: FrontierConfig, payloads: list[str]) -> str:
        client = open_redis(config.redis_url)
        keys = config.keys
        try:
            await feed_urls(client, keys, payloads)
            status = await read_status(client, keys, stale_after=config.worker_stale, runs=0)
        finally:
            await client.aclose()
        alive = sum(1 for w in status["workers"] if w["alive"])
        run = status["run"]
        if not alive:
            where = "no worker is running: they wait for the next `scrapy crawl tass`"
        elif run is not None:
            where = f"run {run['id']} is going: its workers take them"
        else:
            where = "no run is going: a standing worker begins one for them"
        return f"queued {len(payloads)} URLs on {keys.start_urls}; {where}"


def _meta(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--meta {raw!r}: not JSON ({exc})", print_help=False) from exc
