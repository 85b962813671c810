"""One process's share of a reparse job: archived pages through the crawl's own code.

For each chunk it leases (``job.ReparseJob``), the worker reads the chunk's articles and the
archived page of each one's stored revision (``pages``), rebuilds the response the spider got
(``crawler.archive.response_of``) and runs the spider's own article callback on it
(``TassSpider.parse_article``: the page object, the canonical URL, the failure rules); the item,
carrying its archived page and what ``articles`` holds of that version (``StoredVersion``: the
dedupe stage needs no look-up for a page whose text comes out as stored), goes through the
crawl's own stages (Scrapy's ``ItemPipelineManager`` over ``ITEM_PIPELINES``), with the store
replaced as ``TASS_REPARSE_REPLACES`` says (``pipelines.reextract``: only what changed is
written, no new revision). The callback is not run past its item: the requests it would
yield next are never built, as nothing is fetched (there is no downloader). Scrapy's
``item_scraped`` signal is sent for each stored item, as the engine would
(the dedupe stage's late check listens to it).

The chunk's counts (the re-extraction stage's ``tass/reparse/*`` stats over the chunk, and the
articles that have no archived page) and the ids that failed are handed to the job with the
chunk's completion. The worker leases the next chunk and reads its pages while it works on
one, renews its leases meanwhile, stops between chunks when asked to, and gives back a chunk
it could not finish (or took ahead and will not work).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.pipelines import ItemPipelineManager
from scrapy.settings import BaseSettings, Settings
from scrapy.utils.misc import load_object

from crawler import defaults, internals, mongo
from crawler.archive import ArchivedPageError, page_of, response_of
from crawler.extensions import garbage
from crawler.frontier.health import transient
from crawler.items import ArticleItem, PageFailure, StoredVersion
from crawler.mongo import Document, MongoConfig
from crawler.reparse.job import ReparseJob, ReparseSpec, chunk_bounds
from crawler.retrying import retry
from crawler.spiders.tass import TassSpider

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

T = TypeVar("T")
STATS_PREFIX = "tass/reparse/"
STORED = "_stored"
"""The key under which a page document read for a chunk carries its article's stored version."""
IDLE_WAIT = 1.0
"""Seconds a worker waits when every chunk left is leased by another worker."""


def reparse_settings(settings: BaseSettings) -> Settings:
    """The crawl's settings with the stages ``TASS_REPARSE_REPLACES`` names swapped in."""
    result = Settings(settings.copy_to_dict())
    stages = dict(settings.getdict("ITEM_PIPELINES"))
    for old, new in settings.getdict("TASS_REPARSE_REPLACES").items():
        if old not in stages:
            raise ValueError(f"TASS_REPARSE_REPLACES names {old}, which ITEM_PIPELINES has not")
        stages[new] = stages.pop(old)
    result.set("ITEM_PIPELINES", stages)
    return result


@dataclass(slots=True)
class _Taken:
    """A leased chunk with its pages read, its lease being renewed."""

    chunk: str
    docs: list[Document]
    missing: list[int]
    renewing: asyncio.Task[None]


async def _let_go(job: ReparseJob, chunk: str, renewing: asyncio.Task[None]) -> None:
    """Stop renewing ``chunk``'s lease and release it: another worker may take it at once
    instead of after its lease (a release that fails leaves it to the lease)."""
    renewing.cancel()
    with contextlib.suppress(Exception):
        await job.release(chunk)


async def _give_back(job: ReparseJob, ahead: asyncio.Task[_Taken | str | None]) -> None:
    """Release the chunk taken ahead and not worked (a stop, an error)."""
    if not ahead.done():
        ahead.cancel()  # _take releases a chunk it leased
        with contextlib.suppress(BaseException):
            await ahead
        return
    taken = ahead.result() if not ahead.cancelled() and ahead.exception() is None else None
    if isinstance(taken, _Taken):
        await _let_go(job, taken.chunk, taken.renewing)


def _first_item(outputs: Iterator[Any]) -> ArticleItem | PageFailure | None:
    """The article (or failure) an article callback yields, which comes before its requests;
    the callback is closed there: the links it would go on to build are never fetched here."""
    try:
        for output in outputs:
            if isinstance(output, ArticleItem | PageFailure):
                return output
        return None
    finally:
        close = getattr(outputs, "close", None)  # a generator: run no further
        if close is not None:
            close()


class ReparseWorker:
    """Takes chunks of one job until none is left (module docstring)."""

    def __init__(
        self,
        crawler: Crawler,
        spider: TassSpider,
        manager: ItemPipelineManager,
        job: ReparseJob,
        spec: ReparseSpec,
        *,
        concurrency: int = defaults.REPARSE_CONCURRENCY,
    ) -> None:
        self.crawler = crawler
        self.spider = spider
        self.manager = manager
        self.job = job
        self.spec = spec
        self.concurrency = concurrency
        self.mongo_config = MongoConfig.from_settings(crawler.settings)
        self._db: Database[Document] | None = None
        self.chunks = 0
        self.active = 0
        """Pages between their callback and the end of the stages: what the stages' batches
        wait for (``internals.count_in_flight``; nothing downloads here)."""
        internals.count_in_flight(crawler, lambda: (0, self.active))

    @classmethod
    def build(cls, settings: BaseSettings, job: ReparseJob, spec: ReparseSpec) -> ReparseWorker:
        """A worker whose spider and stages are built as the crawl builds them."""
        crawler = Crawler(TassSpider, reparse_settings(settings))
        crawler.stats = load_object(crawler.settings["STATS_CLASS"])(crawler)
        spider = TassSpider.from_crawler(crawler)
        crawler.spider = spider
        manager = ItemPipelineManager.from_crawler(crawler)
        return cls(crawler, spider, manager, job, spec)

    async def run(self, stop: asyncio.Event) -> int:
        """Work until the job is done (or ``stop`` is set between chunks); chunks done.

        The next chunk is leased and its pages read while this one is worked (``_take``), so
        the stages never wait for MongoDB to send a chunk's pages."""
        self._db = mongo.acquire(self.crawler, self.mongo_config).db
        await self.manager.open_spider_async()
        garbage.tune(garbage.threshold_of(self.crawler.settings))  # as the crawl's workers
        loop = asyncio.get_running_loop()
        ahead: asyncio.Task[_Taken | str | None] | None = None
        try:
            taken = await self._take(stop, wait=True)
            while isinstance(taken, _Taken):
                ahead = loop.create_task(self._take(stop, wait=False))
                await self._chunk(taken)
                self.chunks += 1
                if stop.is_set():
                    break
                taken, ahead = await ahead, None
                if taken == "":  # every chunk left was leased by someone: wait for one
                    taken = await self._take(stop, wait=True)
        finally:
            if ahead is not None:
                await _give_back(self.job, ahead)
            await self.manager.close_spider_async()
            await mongo.release(self.crawler)
        return self.chunks

    async def _take(self, stop: asyncio.Event, *, wait: bool) -> _Taken | str | None:
        """Lease a chunk and read its pages, renewing the lease from then on; None when the
        job is done or ``stop`` is set; ``""`` (only when not ``wait``-ing) when every chunk
        left is leased by someone."""
        while not stop.is_set():
            chunk = await self._redis("lease a chunk", self.job.lease)
            if chunk is None:
                return None  # the job is done
            if chunk == "":
                if not wait:
                    return ""
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_WAIT)
                continue
            renewing = asyncio.get_running_loop().create_task(self._renew(chunk))
            try:
                docs, missing = await self._pages(chunk)
            except BaseException:
                await _let_go(self.job, chunk, renewing)
                raise
            return _Taken(chunk, docs, missing, renewing)
        return None

    async def _chunk(self, taken: _Taken) -> None:
        chunk = taken.chunk
        try:
            counts, failed = await self._work(taken)
        except BaseException:
            await _let_go(self.job, chunk, taken.renewing)
            raise
        taken.renewing.cancel()
        if not await self._redis("finish a chunk", lambda: self.job.done(chunk, counts, failed)):
            logger.warning("Chunk %s was finished by another worker first", chunk)

    async def _work(self, taken: _Taken) -> tuple[dict[str, int], dict[int, str]]:
        """Re-extract the chunk's articles; its counts and the ids that failed."""
        before = self._stats()
        docs, missing = taken.docs, taken.missing
        gate = asyncio.Semaphore(self.concurrency)

        async def one(doc: Document) -> Any:
            async with gate:
                self.active += 1
                try:
                    return await self._page(doc)
                finally:
                    self.active -= 1

        results = await asyncio.gather(*(one(doc) for doc in docs))
        after = self._stats()
        counts = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        if missing:
            counts["no_page"] = len(missing)
            counts["articles"] = counts.get("articles", 0) + len(missing)
        failed = {
            int(result.article_id): result.reason
            for result in results
            if isinstance(result, PageFailure) and result.article_id is not None
        }
        return counts, failed

    async def _pages(self, chunk: str) -> tuple[list[Document], list[int]]:
        """The archived page of each of the chunk's articles at its stored revision, and the
        ids of those that have none."""
        db = self._db
        assert db is not None
        low, high = chunk_bounds(chunk)
        query = {"$and": [self.spec.article_filter(), {"_id": {"$gte": low, "$lte": high}}]}

        def read() -> tuple[list[Document], list[int]]:
            # Whole documents (the re-extraction compares with them): a projection of the
            # fingerprints alone cost SecantusDB more than them all (120 against 75 ms a chunk).
            stored = {d["_id"]: d for d in db[mongo.ARTICLES].find(query)}
            pages = {}
            for d in db[mongo.PAGES].find({"article_id": {"$in": sorted(stored)}}):
                article = stored[d["article_id"]]
                if d.get("revision") == (article.get("revision") or 1):
                    d[STORED] = StoredVersion(article)
                    pages[d["article_id"]] = d
            return [pages[i] for i in sorted(pages)], sorted(set(stored) - set(pages))

        end = time.monotonic() + self.mongo_config.retry_deadline
        return await mongo.retry(read, what=f"archived pages of {chunk}", deadline=lambda: end)

    async def _page(self, doc: Document) -> Any:
        """The archived page ``doc`` through the spider's callback and the stages."""
        response = None
        try:
            page = page_of(doc)
        except ArchivedPageError as exc:
            output: ArticleItem | PageFailure | None = PageFailure(
                url=str(doc.get("url")),
                reason="reparse:unreadable_page",
                detail=str(exc),
                article_id=doc.get("article_id"),
            )
        else:
            page = dataclasses.replace(page, stored=doc.get(STORED))
            response = response_of(page)
            output = _first_item(self.spider.parse_article(response))
            if isinstance(output, ArticleItem):
                output.fetched = page
            elif isinstance(output, PageFailure) and output.article_id is None:
                output.article_id = page.article_id
        if output is None:
            return None
        result = await self.manager.process_item_async(output)
        if isinstance(result, ArticleItem):
            await self.crawler.signals.send_catch_log_async(
                signal=signals.item_scraped, item=result, response=response, spider=self.spider
            )
        return result

    async def _renew(self, chunk: str) -> None:
        every = self.job.lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # a lost renewal only risks doing it twice
                await self.job.renew(chunk)

    def _stats(self) -> dict[str, int]:
        stats = self.crawler.stats.get_stats()
        return {
            k.removeprefix(STATS_PREFIX): int(v)
            for k, v in stats.items()
            if k.startswith(STATS_PREFIX) and isinstance(v, int)
        }

    async def _redis(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        end = time.monotonic() + self.mongo_config.retry_deadline
        return await retry(call, what=f"Reparse: {what}", retry_on=transient, deadline=lambda: end)
