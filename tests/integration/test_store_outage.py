"""MongoDB goes away mid-crawl: nothing is lost, and nothing is acknowledged unwritten; what a
closing store spilled is written back when a store opens next.

Each test starts its own SecantusDB server (never the session's) so it can stop it by pid and
start it again on the same port and data folder.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from bson import json_util

from crawler.embedded import ServerProcess, start_mongo
from crawler.items import PageFailure
from crawler.outcome import EXIT_INTERRUPTED
from pipelines.store import StorePipeline, StoreUnavailable
from replica.launch import ReplicaProcess
from tests.unit.pipelines.helpers import Chain, article, make_crawler, run

DATABASE = "outage"


class OwnMongo:
    """A server of this test's own, stopped at most once by its pid."""

    def __init__(self, data_dir: Path) -> None:
        self.server: ServerProcess = start_mongo(data_dir)
        self.running = True

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        if self.running:
            self.server.stop()
            self.running = False


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[OwnMongo]:
    mongo = OwnMongo(tmp_path / "mongo")
    yield mongo
    mongo.stop()


def _count(url: str, collection: str) -> int:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000
    )
    try:
        return client[DATABASE][collection].count_documents({})
    finally:
        client.close()


def test_outage_in_the_middle_loses_nothing(own_mongo: OwnMongo, tmp_path: Path) -> None:
    crawler = make_crawler(
        own_mongo.url,
        DATABASE,
        TASS_MONGO_TIMEOUT=0.5,
        TASS_STORE_BATCH_SIZE=4,
        TASS_STORE_FLUSH_INTERVAL=0.05,
        TASS_DATA_DIR=str(tmp_path / "data"),
    )
    chain = Chain(crawler)
    restarted: list[ServerProcess] = []

    async def body():
        await chain.open()
        await asyncio.gather(*(chain.process(article(100 + i)) for i in range(10)))
        own_mongo.stop()
        during = [asyncio.create_task(chain.process(article(200 + i))) for i in range(10)]
        during.append(
            asyncio.create_task(chain.process(PageFailure(url="https://tass.com/x/1", reason="r")))
        )
        await asyncio.sleep(1.5)
        assert not any(t.done() for t in during)  # waiting, not acknowledged, not dropped
        server = await asyncio.to_thread(
            start_mongo, Path(own_mongo.server.data_dir), port=own_mongo.server.port
        )
        restarted.append(server)
        await asyncio.gather(*during)
        # The buffer is empty after the outage; the session goes on normally.
        await chain.process(article(300))
        await chain.close()

    try:
        run(body)
    finally:
        for server in restarted:
            assert _count(server.url, "articles") == 21
            assert _count(server.url, "failures") == 1
            server.stop()
    assert chain.stat("tass/store/retries") >= 1
    assert chain.stat("tass/store/inserted") == 21
    assert not (tmp_path / "data" / "spill").exists()


def test_close_during_an_outage_spills_to_disk(own_mongo: OwnMongo, tmp_path: Path) -> None:
    crawler = make_crawler(
        own_mongo.url,
        DATABASE,
        TASS_MONGO_TIMEOUT=0.3,
        TASS_STORE_FLUSH_INTERVAL=0.05,
        TASS_STORE_CLOSE_DEADLINE=1.0,
        TASS_DATA_DIR=str(tmp_path / "data"),
    )
    store = StorePipeline.from_crawler(crawler)
    items = [article(400 + i) for i in range(3)]

    async def body():
        await store.open_spider()
        own_mongo.stop()
        tasks = [asyncio.create_task(store.process_item(item)) for item in items]
        await asyncio.sleep(0.3)
        await store.close_spider()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(body)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    spilled = list((tmp_path / "data" / "spill").glob("store-*.jsonl"))
    assert len(spilled) == 1
    records = [json_util.loads(line) for line in spilled[0].read_text().splitlines()]
    assert [(r["collection"], r["doc"]["_id"]) for r in records] == [
        ("articles", 400),
        ("articles", 401),
        ("articles", 402),
    ]
    assert records[0]["doc"]["body"] == items[0].body
    assert crawler.stats.get_value("tass/store/spilled") == 3


def test_what_a_closing_store_spilled_is_written_back_when_mongodb_returns(
    own_mongo: OwnMongo, tmp_path: Path
) -> None:
    """MongoDB stops while a worker is closing; the next store to open, with MongoDB back,
    writes the spilled batch and deletes the file: nothing is lost."""
    settings = {
        "TASS_MONGO_TIMEOUT": 0.3,
        "TASS_STORE_FLUSH_INTERVAL": 0.05,
        "TASS_STORE_CLOSE_DEADLINE": 1.0,
        "TASS_DATA_DIR": str(tmp_path / "data"),
    }
    closing = StorePipeline.from_crawler(make_crawler(own_mongo.url, DATABASE, **settings))
    items = [article(500 + i) for i in range(4)]

    async def close_during_outage():
        await closing.open_spider()
        await asyncio.gather(*(closing.process_item(item) for item in items[:2]))
        own_mongo.stop()
        tasks = [asyncio.create_task(closing.process_item(item)) for item in items[2:]]
        await asyncio.sleep(0.2)
        await closing.close_spider()
        return await asyncio.gather(*tasks, return_exceptions=True)

    assert all(isinstance(r, StoreUnavailable) for r in run(close_during_outage))
    assert len(list((tmp_path / "data" / "spill").glob("store-*.jsonl"))) == 1
    server = start_mongo(Path(own_mongo.server.data_dir), port=own_mongo.server.port)
    try:
        crawler = make_crawler(server.url, DATABASE, **settings)
        opening = StorePipeline.from_crawler(crawler)

        async def open_again():
            await opening.open_spider()
            await opening.close_spider()

        run(open_again)
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(server.url)
        ids = sorted(d["_id"] for d in client[DATABASE].articles.find({}, {"_id": 1}))
        client.close()
        assert ids == [500, 501, 502, 503]
        assert list((tmp_path / "data" / "spill").iterdir()) == []
        assert crawler.stats.get_value("tass/store/spill_replayed") == 2
    finally:
        server.stop()


@pytest.mark.slow
def test_a_worker_stopped_during_an_outage_spills_and_the_next_one_writes_it_back(
    own_mongo: OwnMongo, tmp_path: Path, crawl_env_factory
) -> None:
    """The compose case: MongoDB stops, then a worker is stopped (SIGTERM) while its items wait
    for MongoDB. Scrapy closes the pipelines only once those items are done, so the stages must
    notice the stop themselves: the worker spills within TASS_STORE_CLOSE_DEADLINE and exits by
    itself, as interrupted before its run ended (rather than waiting out
    TASS_MONGO_RETRY_DEADLINE and being killed). With MongoDB back,
    the next crawl writes the spill back, finishes the run, and every article is stored."""
    with ReplicaProcess(articles=400, seed=3, extra_args=["--no-hostile"]) as replica:
        env = crawl_env_factory(replica, mongo_uri=own_mongo.url)
        data = tmp_path / "data"
        settings = {
            "CRAWL_RATE": "40",
            "TASS_MONGO_TIMEOUT": "1",
            "TASS_MONGO_RETRY_DEADLINE": "600",
            "TASS_STORE_CLOSE_DEADLINE": "3",
            "TASS_DATA_DIR": str(data),
        }
        worker = env.start_worker("first", "-a", "since=all", **settings)
        db = env.db()
        try:
            for _ in range(600):
                if db.articles.count_documents({}) >= 20:
                    break
                assert worker.poll() is None, env.log_text()[-3000:]
                time.sleep(0.1)
            own_mongo.stop()
            time.sleep(2)  # items of the pages fetched meanwhile now wait for MongoDB
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=120) == EXIT_INTERRUPTED, env.log_text()[-3000:]
        except subprocess.TimeoutExpired as exc:
            worker.kill()
            worker.wait()
            raise AssertionError("the stopped worker waited out MongoDB, never spilled") from exc
        log = env.log_text()
        assert "The crawler is stopping: MongoDB is waited for 3s more" in log
        spilled = list((data / "spill").glob("store-*.jsonl"))
        assert spilled, log[-3000:]
        server = start_mongo(Path(own_mongo.server.data_dir), port=own_mongo.server.port)
        try:
            second = env.start_worker("second", "-a", "since=all", **settings)
            assert second.wait(timeout=300) == 0, env.log_text()[-3000:]
            assert "spilled items from" in env.log_text()
            assert list((data / "spill").iterdir()) == []
            stored = {d["_id"] for d in env.db().articles.find({}, {"_id": 1})}
            assert stored
            reachable = {a["id"] for a in replica.truth()["articles"] if a["reachable"]}
            assert sorted(reachable - stored) == [], "articles lost"
            assert env.db().runs.count_documents({}) == 1
        finally:
            env.close_clients()
            server.stop()
