"""The comparison crawlers of the throughput benchmark, and the stats extension all runs use.

- ``ceiling``: a bare Scrapy spider that fetches the article URLs and does nothing with the
  responses (no parsing, no Redis, no MongoDB): what Scrapy alone can do on this machine.
- ``baseline``: what a user would write with scrapy-redis and its defaults (its scheduler and
  dupefilter, pickled requests, ``SCHEDULER_PERSIST=False``), field extraction with selectors in
  the callback, and a pipeline that calls ``insert_one`` for each item (synchronous pymongo, as
  in the scrapy-redis and Scrapy documentation examples).

Both start from the article URLs of the replica's ground truth (a user's spider starts from a
list of URLs), one per line in ``--urls``. They live here, outside the ``crawler`` package, so
``scrapy crawl tass`` never sees them, and they run with their own settings (not the project's)::

    python -m bench.spiders ceiling|baseline --urls FILE --stats OUT.json [-s NAME=VALUE ...]

``StatsDumpExtension`` (also added to the project's crawl with ``-s EXTENSIONS=...``) writes the
Scrapy stats, the crawl window (spider opened → closed) and the process's CPU time within that
window to ``BENCH_STATS_FILE`` as JSON when the spider closes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Self

import pymongo
import scrapy
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.settings import Settings

from bench.common import UA


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


class StatsDumpExtension:
    """Writes the crawl's stats, window and CPU time as JSON at ``spider_closed``."""

    def __init__(self, crawler: Crawler, path: Path) -> None:
        self.crawler = crawler
        self.path = path
        self.opened_at = 0.0
        self.cpu_at_open = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("BENCH_STATS_FILE")
        if not path:
            raise NotConfigured("BENCH_STATS_FILE is not set")
        ext = cls(crawler, Path(path))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self) -> None:
        self.opened_at = time.time()
        self.cpu_at_open = _cpu()

    def spider_closed(self, reason: str) -> None:
        assert self.crawler.stats is not None
        data = {
            "reason": reason,
            "opened_at": self.opened_at,
            "closed_at": time.time(),
            "cpu_seconds": _cpu() - self.cpu_at_open,
            "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "stats": self.crawler.stats.get_stats(),
        }
        self.path.write_text(json.dumps(data, default=str, indent=1))


def _read_urls(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


class CeilingSpider(scrapy.Spider):
    """Fetches every URL and ignores the response."""

    name = "ceiling"

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url_file = urls

    async def start(self) -> AsyncIterator[Any]:
        for url in _read_urls(self.url_file):
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> None:
        return None


class BaselineSpider(scrapy.Spider):
    """A scrapy-redis spider as its README suggests, extracting fields in the callback."""

    name = "baseline"

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url_file = urls

    async def start(self) -> AsyncIterator[Any]:
        for url in _read_urls(self.url_file):
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[dict[str, Any]]:
        root = response.css("main.container")
        title = root.css("h1::text").get(default="").strip()
        lead = root.css(
            ".news-header__lead::text, .article-lead::text, .opinion-header__lead::text"
        ).get()
        paragraphs = [
            " ".join(p.xpath("string()").get("").split())
            for p in root.css("div.text-content div.text-block > p, div.text-content h2")
        ]
        published = root.css("dateformat::attr(time)").get()
        yield {
            "url": response.url,
            "title": title,
            "lead": lead.strip() if lead else None,
            "body": "\n\n".join(p for p in paragraphs if p),
            "published": int(published) if published and published.isdigit() else None,
            "tags": root.css("a.tags__item::text").getall(),
        }


class InsertOnePipeline:
    """One ``insert_one`` per item, as the usual MongoDB pipeline example does."""

    def __init__(self, uri: str, database: str) -> None:
        self.uri = uri
        self.database = database
        self.client: pymongo.MongoClient[dict[str, Any]] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.get("MONGO_URI"), crawler.settings.get("MONGO_DATABASE"))

    def open_spider(self) -> None:
        self.client = pymongo.MongoClient(self.uri)
        self.collection = self.client[self.database]["articles"]

    def close_spider(self) -> None:
        if self.client is not None:
            self.client.close()

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        self.collection.insert_one(dict(item))
        return item


SPIDERS: dict[str, type[scrapy.Spider]] = {"ceiling": CeilingSpider, "baseline": BaselineSpider}


def settings_for(kind: str, concurrency: int) -> dict[str, Any]:
    """The settings of a comparison crawl: Scrapy's defaults but for the user agent (the site
    refuses library defaults), the same per-process concurrency as the project's workers, and
    the stats dump."""
    common: dict[str, Any] = {
        "USER_AGENT": UA,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "EXTENSIONS": {"bench.spiders.StatsDumpExtension": 0},
    }
    if kind == "baseline":
        common.update(
            {
                "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
                "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "ITEM_PIPELINES": {"bench.spiders.InsertOnePipeline": 300},
            }
        )
    return common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a comparison crawl of the benchmark.")
    parser.add_argument("kind", choices=sorted(SPIDERS))
    parser.add_argument("--urls", required=True, help="file of URLs, one per line")
    parser.add_argument("--stats", required=True, help="where to write the stats JSON")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("-s", dest="set", action="append", default=[], help="NAME=VALUE")
    args = parser.parse_args(argv)
    settings = Settings(settings_for(args.kind, args.concurrency))
    settings.set("BENCH_STATS_FILE", args.stats)
    for pair in args.set:
        name, _, value = pair.partition("=")
        settings.set(name, value)
    process = CrawlerProcess(settings, install_root_handler=True)
    process.crawl(SPIDERS[args.kind], urls=args.urls)
    process.start()


if __name__ == "__main__":
    main()
