"""Builders shared by the pipeline tests: articles with distinct bodies, crawlers, runners."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem, PageFailure
from pipelines.clean import CleanPipeline
from pipelines.dedupe import DedupePipeline
from pipelines.store import StorePipeline
from pipelines.validate import ValidatePipeline

T = TypeVar("T")

_VOCABULARY = (
    "kremlin minister talks sanctions grain export pipeline summit delegation moscow beijing "
    "treaty spokesman ministry economy ruble inflation forecast defense drone region "
    "governor airport flights weather storm satellite launch cosmonaut station orbit "
    "football league match coach election parliament budget energy prices oil gas tanker "
    "port harbour border official statement visit cooperation agreement investment bank "
    "reserve rate growth"
)
WORDS = _VOCABULARY.split()

BASE_TIME = datetime(2026, 10, 7, 9, 30, tzinfo=UTC)


def body_text(seed: int, paragraphs: int = 4, words: int = 40) -> str:
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
        for _ in range(paragraphs)
    )


def article(aid: int, *, seed: int | None = None, **overrides: Any) -> ArticleItem:
    """A valid, clean article; its body depends on ``seed`` (default: the id)."""
    fields: dict[str, Any] = {
        "id": aid,
        "url": f"https://tass.com/politics/{aid}",
        "section": "politics",
        "kind": "news",
        "title": f"Headline number {aid}",
        "lead": f"The lead of {aid}.",
        "body": body_text(aid if seed is None else seed),
        "dateline": "MOSCOW",
        "published_at": BASE_TIME + timedelta(minutes=aid % 1000),
        "modified_at": None,
        "tags": ["Russia"],
    }
    fields.update(overrides)
    return ArticleItem(**fields)


def failure(url: str, reason: str = "http_status", **overrides: Any) -> PageFailure:
    return PageFailure(url=url, reason=reason, **overrides)


def make_crawler(mongo_uri: str = "", database: str = "", **settings: Any) -> Crawler:
    values: dict[str, Any] = {
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": database or "unused",
        "TASS_STORE_BATCH_SIZE": 100,
        "TASS_STORE_FLUSH_INTERVAL": 0.05,
        "TASS_MONGO_TIMEOUT": 2.0,
        "TASS_MONGO_RETRY_DEADLINE": 60.0,
        "TASS_STORE_CLOSE_DEADLINE": 30.0,
    }
    values.update(settings)
    return get_crawler(settings_dict=values)


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh event loop (the pipelines use asyncio only)."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


class Chain:
    """The four stages built from one crawler, applied in the configured order."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.clean = CleanPipeline.from_crawler(crawler)
        self.validate = ValidatePipeline.from_crawler(crawler)
        self.dedupe = DedupePipeline.from_crawler(crawler)
        self.store = StorePipeline.from_crawler(crawler)

    async def open(self) -> None:
        await self.dedupe.open_spider()
        await self.store.open_spider()

    async def close(self) -> None:
        await asyncio.gather(self.dedupe.close_spider(), self.store.close_spider())

    async def process(self, item: Any) -> Any:
        item = self.clean.process_item(item)
        item = self.validate.process_item(item)
        item = await self.dedupe.process_item(item)
        item = await self.store.process_item(item)
        await self.dedupe.item_scraped(item)  # as Scrapy's item_scraped signal does
        return item

    def stat(self, key: str) -> Any:
        assert self.crawler.stats is not None
        return self.crawler.stats.get_value(key)


def near_copy_body(seed: int) -> tuple[str, str]:
    """(original, republished copy): ten paragraphs, one word changed, case and commas moved."""
    original = body_text(seed, paragraphs=10)
    words = original.split(" ")
    words[30] = "zeppelin"
    return original, " ".join(words).replace(".", "!")
