"""The frontier's Scrapy adapters in-process: a real engine crawls the in-process replica.

Each test builds a crawler from the project's settings (``get_crawler``, as Scrapy's own tests
do), overriding only addresses, the rate and the idle grace, and runs it on the session's asyncio
reactor (``tests.inprocess``) against a ``ReplicaServer`` on the same loop, with the real Valkey
and SecantusDB fixtures: the scheduler, the lifecycle, the retry and known-articles middlewares
and the budgeted download handler all take part, in about a second a crawl.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pymongo
import pytest
import redis
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from crawler import settings as project
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.middleware import KnownArticlesMiddleware
from crawler.frontier.scheduler import TassScheduler, frontier_of
from crawler.spiders.tass import TassSpider
from replica.server import ReplicaServer
from tests import inprocess

ARTICLES = 25


def project_settings(**overrides: Any) -> dict[str, Any]:
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    values.update(overrides)
    return values


@dataclass
class Crawl:
    """One in-process crawl: its crawler, what the site saw, where it wrote."""

    crawler: Crawler
    site: dict[str, Any]
    seen: dict[str, Any]
    prefix: str
    database: str

    @property
    def stats(self) -> dict[str, Any]:
        assert self.crawler.stats is not None
        return self.crawler.stats.get_stats()


Front = Callable[[ReplicaServer], AbstractAsyncContextManager[str]]
"""What stands between the crawler and the replica: given the replica, the base URL to crawl."""


@contextlib.asynccontextmanager
async def direct(server: ReplicaServer) -> AsyncIterator[str]:
    yield server.site.base_url


def run_crawl(
    redis_url: str,
    mongo_uri: str,
    replica: dict[str, Any] | None = None,
    *,
    front: Front = direct,
    spider: type[TassSpider] = TassSpider,
    **extra: Any,
) -> Crawl:
    """Crawl an in-process replica with the project's settings (module docstring), straight
    or through ``front`` (a rewriting proxy), with ``spider`` (``TassSpider`` or a subclass)."""
    prefix, database = f"test-{uuid.uuid4().hex[:12]}", f"test_{uuid.uuid4().hex[:12]}"
    seen: dict[str, Any] = {}

    async def main() -> tuple[Crawler, dict[str, Any]]:
        options = {"articles": ARTICLES, "hostile": False, **(replica or {})}
        async with inprocess.replica(**options) as server, front(server) as base_url:
            settings = project_settings(
                TASS_BASE_URL=base_url,
                REDIS_URL=redis_url,
                MONGO_URI=mongo_uri,
                MONGO_DATABASE=database,
                TASS_REDIS_PREFIX=prefix,
                CRAWL_RATE=2000,
                CRAWL_CONCURRENCY=64,
                CONCURRENT_REQUESTS=16,
                TASS_IDLE_GRACE=0.1,
                TASS_HEARTBEAT_INTERVAL=0.1,
                TASS_RETRY_BACKOFF=0.05,
                **extra,
            )
            crawler = get_crawler(spider, settings)

            def spider_opened(spider: Any) -> None:
                # The adapters find the core through the public engine.scheduler.
                seen["frontier"] = frontier_of(crawler)
                seen["scheduler"] = crawler.engine.scheduler

            crawler.signals.connect(spider_opened, signal=signals.spider_opened)
            await maybe_deferred_to_future(crawler.crawl(since="all"))
            return crawler, server.stats.snapshot()

    crawler, site = inprocess.run(main)
    return Crawl(crawler, site, seen, prefix, database)


def cleanup(crawl: Crawl, redis_url: str, mongo_uri: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{crawl.prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_uri)
    mongo.drop_database(crawl.database)
    mongo.close()


@pytest.fixture(scope="module")
def plain_crawl(redis_server, mongo_server) -> Iterator[Crawl]:
    """One crawl of the replica without faults, shared by the tests that only read it."""
    crawl = run_crawl(redis_server.url, mongo_server.url)
    yield crawl
    cleanup(crawl, redis_server.url, mongo_server.url)


@pytest.fixture
def crawl(redis_server, mongo_server) -> Iterator[Any]:
    """``crawl(replica_options, **settings)``: a crawl of this test's own."""
    made: list[Crawl] = []

    def go(replica: dict[str, Any] | None = None, **extra: Any) -> Crawl:
        made.append(run_crawl(redis_server.url, mongo_server.url, replica, **extra))
        return made[-1]

    yield go
    for crawl in made:
        cleanup(crawl, redis_server.url, mongo_server.url)


@contextlib.contextmanager
def database(mongo_uri: str, crawl: Crawl) -> Iterator[Any]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_uri)
    try:
        yield client[crawl.database]
    finally:
        client.close()


def counts(redis_url: str, prefix: str) -> tuple[int, int, int]:
    keys = FrontierKeys(prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        return tuple(int(client.zcard(k)) for k in (keys.pending, keys.leased, keys.delayed))
    finally:
        client.close()


def test_the_scheduler_and_lifecycle_crawl_a_run_to_its_end(
    plain_crawl, redis_url, mongo_uri, redis_client
) -> None:
    stats, site, seen = plain_crawl.stats, plain_crawl.site, plain_crawl.seen
    assert stats["finish_reason"] == "finished"
    assert isinstance(seen["scheduler"], TassScheduler)
    assert seen["frontier"] is seen["scheduler"].frontier is not None
    # Every lease was acknowledged, nothing is left queued, leased or delayed, the run ended.
    assert stats["tass/frontier/leased"] == stats["tass/frontier/acked"] > ARTICLES
    assert counts(redis_url, plain_crawl.prefix) == (0, 0, 0)
    assert redis_client.get(FrontierKeys(plain_crawl.prefix).run) is None
    # Each article once in MongoDB, and the run report written by this worker.
    with database(mongo_uri, plain_crawl) as db:
        assert db.articles.count_documents({}) == ARTICLES
        report = db.runs.find_one({"_id": stats["tass/run/ended_by_this_worker"]})
    assert stats["tass/run/articles"] == ARTICLES
    assert report is not None and report["counters"]["run/articles"] == ARTICLES
    assert site["by_kind"]["article"] == ARTICLES  # no article fetched twice


def test_the_known_articles_middleware_drops_links_the_frontier_would_refuse(
    plain_crawl, mongo_uri
) -> None:
    assert plain_crawl.stats["tass/frontier/known_dropped"] > 0
    # Dropping them lost nothing: every article stored, and fetched once.
    with database(mongo_uri, plain_crawl) as db:
        assert db.articles.count_documents({}) == ARTICLES
    assert plain_crawl.site["by_kind"]["article"] == ARTICLES


def test_the_known_articles_middleware_passes_everything_without_a_frontier() -> None:
    crawler = get_crawler(TassSpider, project_settings())
    middleware = KnownArticlesMiddleware.from_crawler(crawler)
    response = HtmlResponse("https://tass.com/world", body=b"<html></html>")
    requests = [Request("https://tass.com/world/8", meta={"article_id": 8})]
    assert list(middleware.process_spider_output(response, requests)) == requests


def test_every_request_on_the_wire_waited_for_a_send_time(plain_crawl) -> None:
    # robots.txt included: the site saw exactly the requests the budget let go.
    assert plain_crawl.stats["tass/frontier/send_waits"] == plain_crawl.site["total"]


def test_retries_and_pauses_go_through_the_frontier(crawl, mongo_uri) -> None:
    done = crawl({"fault_503": 0.2, "fault_429": 0.05})
    stats, site = done.stats, done.site
    assert site["by_kind"].get("fault_503", 0) > 0
    # Each 503 became a delayed retry queued in Redis, then fetched again.
    assert stats["tass/frontier/retries"] == stats["retry/count"] >= site["by_kind"]["fault_503"]
    assert stats["tass/frontier/pauses"] == site["by_kind"].get("fault_429", 0) > 0
    with database(mongo_uri, done) as db:
        assert db.articles.count_documents({}) == ARTICLES
        assert db.failures.count_documents({}) == 0


def test_a_failure_becomes_a_dead_letter(crawl, mongo_uri, redis_client) -> None:
    done = crawl({"fault_503": 0.2}, RETRY_TIMES=0)
    letters = redis_client.hgetall(FrontierKeys(done.prefix).dead)
    with database(mongo_uri, done) as db:
        failed = {doc["url"] for doc in db.failures.find()}
    # The dead letters mirror the failures: a URL that failed, was found again and then
    # became an article has neither (the store drops its failure, the frontier its letter).
    assert failed and {k.decode() for k in letters} == failed
    # An article that failed and was stored on a later sighting recovered: its failure document
    # and its dead letter both went.
    recovered = done.stats.get("tass/store/recovered", 0)
    assert (
        done.stats["tass/frontier/dead_letters"]
        == len(failed) + recovered
        == done.stats["tass/run/failures"]
    )


def test_the_spider_must_implement_the_frontier_protocol(mongo_uri, redis_url) -> None:
    from scrapy import Spider

    class Plain(Spider):
        name = "plain"

    crawler = get_crawler(Plain, project_settings(REDIS_URL=redis_url, MONGO_URI=mongo_uri))
    scheduler = TassScheduler.from_crawler(crawler)
    with pytest.raises(TypeError, match="RunSpider"):
        scheduler.open(Plain())
