"""The store stage against a real MongoDB-protocol server (SecantusDB)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, timedelta

import pymongo
import pytest
from scrapy.exceptions import NotConfigured

from crawler import internals
from crawler.archive import page_of
from crawler.frontier.recovery import PENDING
from crawler.frontier.signals import retry_state, run_entered
from crawler.items import FetchedPage, RetrySettled
from crawler.version import extractor_version
from pipelines.minhash import BINS, bands
from pipelines.store import StorePipeline, StoreWriteError, article_doc

from .helpers import BASE_TIME, Chain, article, failure, make_crawler, run


def _store(mongo_uri, mongo_db_name, **settings):
    crawler = make_crawler(mongo_uri, mongo_db_name, **settings)
    return StorePipeline.from_crawler(crawler), crawler.stats


def test_config_errors_name_the_setting(mongo_uri, mongo_db_name) -> None:
    with pytest.raises(NotConfigured, match="MONGO_URI"):
        _store("", mongo_db_name)
    with pytest.raises(ValueError, match="TASS_STORE_BATCH_SIZE"):
        _store(mongo_uri, mongo_db_name, TASS_STORE_BATCH_SIZE=0)
    with pytest.raises(ValueError, match="TASS_STORE_FLUSH_INTERVAL"):
        _store(mongo_uri, mongo_db_name, TASS_STORE_FLUSH_INTERVAL=-1)
    with pytest.raises(ValueError, match="MONGO_DATABASE"):
        _store(mongo_uri, "bad.name")


def test_indexes_created_at_open(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, _ = _store(mongo_uri, mongo_db_name)

    async def body():
        await store.open_spider()
        await store.close_spider()

    run(body)
    articles = {
        tuple(k for k, _ in v["key"]) for v in mongo_db.articles.index_information().values()
    }
    assert {("published_at",), ("section",), ("tags",), ("minhash_bands",)} <= articles
    failures = mongo_db.failures.index_information()
    assert any(v["key"] == [("url", 1)] and v.get("unique") for v in failures.values())
    revisions = mongo_db.revisions.index_information()
    assert any(
        v["key"] == [("article_id", 1), ("revision", 1)] and v.get("unique")
        for v in revisions.values()
    )


def test_batches_by_size(mongo_uri, mongo_db_name, mongo_db) -> None:
    # The timer would wait a minute: only the batch size can flush these.
    store, stats = _store(
        mongo_uri, mongo_db_name, TASS_STORE_BATCH_SIZE=3, TASS_STORE_FLUSH_INTERVAL=60
    )

    async def body():
        await store.open_spider()
        items = [article(1000 + i) for i in range(6)]
        done = await asyncio.gather(*(store.process_item(item) for item in items))
        assert done == items
        assert mongo_db.articles.count_documents({}) == 6  # written before process_item returned
        await store.close_spider()

    run(body)
    assert stats.get_value("tass/store/batches") == 2
    assert stats.get_value("tass/store/inserted") == 6


def test_batches_by_time(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, stats = _store(
        mongo_uri, mongo_db_name, TASS_STORE_BATCH_SIZE=100, TASS_STORE_FLUSH_INTERVAL=0.1
    )

    async def body():
        await store.open_spider()
        await asyncio.gather(*(store.process_item(article(2000 + i)) for i in range(3)))
        assert mongo_db.articles.count_documents({}) == 3
        await store.process_item(article(2003))
        assert mongo_db.articles.count_documents({}) == 4
        await store.close_spider()

    run(body)
    assert stats.get_value("tass/store/batches") == 2


def test_close_flushes_everything(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, stats = _store(
        mongo_uri, mongo_db_name, TASS_STORE_BATCH_SIZE=100, TASS_STORE_FLUSH_INTERVAL=60
    )

    async def body():
        await store.open_spider()
        tasks = [asyncio.create_task(store.process_item(article(3000 + i))) for i in range(5)]
        tasks.append(asyncio.create_task(store.process_item(failure("https://tass.com/x/1"))))
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in tasks)  # waiting in the buffer
        assert mongo_db.articles.count_documents({}) == 0
        await store.close_spider()
        assert all(t.done() and t.exception() is None for t in tasks)

    run(body)
    assert mongo_db.articles.count_documents({}) == 5
    assert mongo_db.failures.count_documents({}) == 1
    assert stats.get_value("tass/store/batches") == 1


def test_document_shape(mongo_uri, mongo_db_name, mongo_db) -> None:
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))
    item = article(
        2150013,
        modified_at=BASE_TIME + timedelta(hours=2),
        images=[{"url": "https://cdn-media.tass.ru/1.jpg", "caption": "c", "credit": "© TASS"}],
        related=[{"id": 2150011, "url": "https://tass.com/world/2150011", "title": "t"}],
        mark="SPIEF-2025",
        extracted={"title": "ld", "mark": "api", "lead": "page"},
    )

    async def body():
        await chain.open()
        await chain.process(item)
        await chain.close()

    run(body)
    doc = mongo_db.articles.find_one({"_id": 2150013})
    assert set(doc) == {
        "_id", "url", "section", "kind", "title", "lead", "body", "dateline", "published_at",
        "modified_at", "tags", "mark", "images", "related", "extracted", "content_hash",
        "minhash", "minhash_bands", "duplicate_of", "revision", "extractor", "first_seen_at",
        "last_seen_at",
    }  # fmt: skip
    assert doc["extracted"] == {"title": "ld", "mark": "api", "lead": "page"}
    assert doc["revision"] == 1 and doc["duplicate_of"] is None
    # The fixture's client is not tz-aware: BSON datetimes are UTC instants.
    assert doc["published_at"].replace(tzinfo=UTC) == item.published_at
    assert doc["first_seen_at"] == doc["last_seen_at"]
    assert doc["content_hash"] == item.content_hash and doc["minhash"] == item.minhash
    assert item.minhash is not None and len(item.minhash) == BINS
    assert doc["minhash_bands"] == bands(item.minhash)
    assert doc["images"] == item.images and doc["related"] == item.related


def test_article_doc_fingerprints_an_item_that_skipped_dedupe() -> None:
    item = article(6001)
    assert item.minhash is None and item.content_hash is None
    doc = article_doc(item)
    assert doc["content_hash"] and len(doc["minhash"]) == BINS
    assert doc["minhash_bands"] == bands(doc["minhash"])


def test_revision_bump_and_unchanged_refetch(mongo_uri, mongo_db_name, mongo_db) -> None:
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))
    first = article(4001, modified_at=BASE_TIME + timedelta(minutes=1))
    edited = article(
        4001,
        body=first.body + "\n\nAn added paragraph with the latest figures.",
        modified_at=BASE_TIME + timedelta(hours=1),
    )

    async def body():
        await chain.open()
        await chain.process(dataclasses.replace(first))
        doc1 = mongo_db.articles.find_one({"_id": 4001})
        await asyncio.sleep(0.01)
        await chain.process(dataclasses.replace(first))  # the same content again
        doc2 = mongo_db.articles.find_one({"_id": 4001})
        assert doc2["last_seen_at"] > doc1["last_seen_at"]
        assert {k: v for k, v in doc2.items() if k != "last_seen_at"} == {
            k: v for k, v in doc1.items() if k != "last_seen_at"
        }
        assert mongo_db.revisions.count_documents({}) == 0
        await chain.process(edited)
        doc3 = mongo_db.articles.find_one({"_id": 4001})
        assert doc3["revision"] == 2
        assert doc3["body"] == edited.body and doc3["content_hash"] != doc1["content_hash"]
        assert doc3["first_seen_at"] == doc1["first_seen_at"]
        old = mongo_db.revisions.find_one({"article_id": 4001})
        assert old["revision"] == 1 and old["body"] == first.body
        assert old["content_hash"] == doc1["content_hash"]
        assert old["minhash"] == doc1["minhash"] and "minhash_bands" not in old  # not a candidate
        assert (
            old["modified_at"] == doc1["modified_at"] and old["replaced_at"] >= doc1["last_seen_at"]
        )
        # An out-of-order fetch of the first version does not revert the edit.
        await chain.process(dataclasses.replace(first))
        assert mongo_db.articles.find_one({"_id": 4001})["revision"] == 2
        await chain.close()

    run(body)
    assert chain.stat("tass/store/inserted") == 1
    assert chain.stat("tass/store/unchanged") == 2
    assert chain.stat("tass/store/stale") == 1
    assert chain.stat("tass/store/updated") == 1
    assert chain.stat("tass/store/revisions") == 1


def test_same_id_twice_in_one_batch(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, stats = _store(mongo_uri, mongo_db_name, TASS_STORE_FLUSH_INTERVAL=60)
    a = article(5001)
    b = article(5001, title="A corrected headline")

    async def body():
        await store.open_spider()
        tasks = [asyncio.create_task(store.process_item(x)) for x in (a, b)]
        await asyncio.sleep(0)
        await store.close_spider()
        await asyncio.gather(*tasks)

    run(body)
    doc = mongo_db.articles.find_one({"_id": 5001})
    assert doc["title"] == "A corrected headline" and doc["revision"] == 2
    assert mongo_db.revisions.find_one({"article_id": 5001})["title"] == a.title
    assert stats.get_value("tass/store/batches") == 1


def test_failures_upserted_then_recovered(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, stats = _store(mongo_uri, mongo_db_name)
    url = "https://tass.com/politics/6001"

    async def body():
        await store.open_spider()
        await store.process_item(failure(url, "http_status", detail="503", status=503))
        first = mongo_db.failures.find_one({"url": url})
        await asyncio.sleep(0.01)
        await store.process_item(failure(url, "parse:title", detail="no h1", status=200))
        second = mongo_db.failures.find_one({"url": url})
        assert second["attempts"] == 2
        assert second["reason"] == "parse:title" and second["detail"] == "no h1"
        assert second["status"] == 200
        assert second["first_failed_at"] == first["first_failed_at"]
        assert second["last_failed_at"] > first["last_failed_at"]
        assert mongo_db.failures.count_documents({}) == 1
        await store.process_item(failure("https://tass.com/politics/6003", "http_status"))
        await store.process_item(article(6001))
        assert mongo_db.failures.find_one({"url": url}) is None
        assert mongo_db.failures.count_documents({}) == 1
        await store.close_spider()

    run(body)
    assert stats.get_value("tass/store/failures") == 3
    assert stats.get_value("tass/store/recovered") == 1


def test_a_pending_retry_is_kept_until_its_url_is_stored_fails_or_answers(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    """What the retry middleware tells the store (signal ``retry_state``): a failed attempt
    whose retry waits in Redis is a ``retry`` of the URL's failures document, so MongoDB knows
    every pending retry; the URL's outcome then settles it."""
    store, stats = _store(mongo_uri, mongo_db_name)
    crawler = store.crawler
    due = BASE_TIME + timedelta(minutes=5)
    stored = article(81).url
    final, answered, known = (f"https://tass.com/world/{n}" for n in (83, 85, 87))

    async def pending(url: str, attempts: int = 1) -> None:
        member = json.dumps({"url": url, "meta": {"retry_times": attempts}})
        change = failure(
            url, "http_503", status=503, attempts=attempts, retry_at=due, retry_request=member
        )
        await crawler.signals.send_catch_log_async(signal=retry_state, change=change)

    async def body():
        await store.open_spider()
        await store.process_item(failure(known, "http_404", status=404))  # an earlier run's
        for url in (stored, final, answered, known):
            await pending(url)
        [doc] = list(mongo_db.failures.find({"url": stored}))
        assert doc["retry"] == {
            "at": due.replace(tzinfo=None), "attempts": 1, "reason": "http_503",
            "detail": "", "status": 503,
            "request": json.dumps({"url": stored, "meta": {"retry_times": 1}}),
        }  # fmt: skip
        assert doc["attempts"] == 0 and doc["reason"] == "http_503"
        assert "last_failed_at" not in doc, "no final failure yet: not in a run's failures"
        assert mongo_db.failures.find_one({"url": known})["reason"] == "http_404"
        assert mongo_db.failures.count_documents(PENDING) == 4
        await pending(final, attempts=2)
        assert mongo_db.failures.find_one({"url": final})["retry"]["attempts"] == 2
        # The outcomes: stored, failed for good, answered (a hub has no article to store).
        await store.process_item(article(81))
        await store.process_item(failure(final, "http_503", status=503, attempts=3))
        await crawler.signals.send_catch_log_async(
            signal=retry_state, change=RetrySettled(answered)
        )
        await crawler.signals.send_catch_log_async(signal=retry_state, change=RetrySettled(known))
        await store.close_spider()

    run(body)
    assert mongo_db.failures.find_one({"url": stored}) is None
    done = mongo_db.failures.find_one({"url": final})
    assert "retry" not in done and done["attempts"] == 3 and done["last_failed_at"]
    assert mongo_db.failures.find_one({"url": answered}) is None, "it held only the retry"
    earlier = mongo_db.failures.find_one({"url": known})
    assert "retry" not in earlier and earlier["attempts"] == 1, "the earlier failure stays"
    assert mongo_db.failures.count_documents(PENDING) == 0
    assert stats.get_value("tass/store/pending_retries") == 5
    assert stats.get_value("tass/store/settled_retries") == 2


def test_unencodable_item_fails_alone(mongo_uri, mongo_db_name, mongo_db) -> None:
    store, stats = _store(mongo_uri, mongo_db_name, TASS_STORE_FLUSH_INTERVAL=60)
    bad = article(7001, tags=[object()])

    async def body():
        await store.open_spider()
        tasks = [asyncio.create_task(store.process_item(x)) for x in (bad, article(7002))]
        await asyncio.sleep(0)
        await store.close_spider()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(body)
    assert isinstance(results[0], StoreWriteError)
    assert mongo_db.articles.distinct("_id") == [7002]
    assert stats.get_value("tass/store/errors") == 1


def test_workers_race_on_the_same_ids(mongo_uri, mongo_db_name, mongo_db) -> None:
    """Three crawlers (own clients, own buffers) store the same 40 ids at once, three times."""
    ids = range(8000, 8040)

    def version(aid: int, worker: int, round_: int):
        # Even ids: both workers see the same text; odd ids: each worker sees its own edit.
        suffix = "" if aid % 2 == 0 else f" Edit {worker}-{round_}."
        return article(aid, body=article(aid).body + suffix)

    async def worker(number: int):
        crawler = make_crawler(
            mongo_uri, mongo_db_name, TASS_STORE_BATCH_SIZE=5, TASS_STORE_FLUSH_INTERVAL=0.01
        )
        store = StorePipeline.from_crawler(crawler)
        await store.open_spider()
        for round_ in range(3):
            await asyncio.gather(*(store.process_item(version(i, number, round_)) for i in ids))
        await store.close_spider()
        return crawler.stats

    async def body():
        return await asyncio.gather(worker(1), worker(2), worker(3))

    stats = run(body)
    assert sorted(mongo_db.articles.distinct("_id")) == list(ids)
    assert mongo_db.articles.count_documents({}) == len(ids)
    for doc in mongo_db.articles.find({"_id": {"$mod": [2, 0]}}):
        assert doc["revision"] == 1
    for doc in mongo_db.articles.find({"_id": {"$mod": [2, 1]}}):
        revisions = sorted(
            r["revision"] for r in mongo_db.revisions.find({"article_id": doc["_id"]})
        )
        # Every bump kept exactly one previous version: 1..revision-1, no gaps, no repeats.
        assert revisions == list(range(1, doc["revision"]))
        assert doc["revision"] >= 2
    inserted = sum(s.get_value("tass/store/inserted", 0) for s in stats)
    assert inserted == len(ids)


def _fetched(aid: int, text: str) -> FetchedPage:
    return FetchedPage(
        url=f"https://tass.com/politics/{aid}",
        final_url=f"https://tass.com/politics/{aid}",
        status=200,
        headers=(("Content-Type", "text/html; charset=utf-8"),),
        fetched_at=BASE_TIME,
        body=f"<html><body>{text}</body></html>".encode(),
    )


def test_each_stored_version_keeps_its_raw_page(mongo_uri, mongo_db_name, mongo_db) -> None:
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))
    first = article(4101, fetched=_fetched(4101, "first"))
    edited = article(4101, body=first.body + "\n\nA new paragraph.", fetched=_fetched(4101, "ed"))
    again = article(4101, body=edited.body, fetched=_fetched(4101, "same text, other ads"))

    async def body():
        await chain.open()
        await chain.process(first)
        await chain.process(edited)
        await chain.process(again)  # unchanged: its version already has its page
        await chain.close()

    run(body)
    pages = {d["revision"]: d for d in mongo_db.pages.find({"article_id": 4101})}
    assert sorted(pages) == [1, 2]
    assert page_of(pages[1]).body == b"<html><body>first</body></html>"
    assert page_of(pages[2]).body == b"<html><body>ed</body></html>"  # the first to produce it
    doc = mongo_db.articles.find_one({"_id": 4101})
    assert pages[2]["content_hash"] == doc["content_hash"] and doc["revision"] == 2
    assert "fetched" not in doc  # the page is never in the article document
    assert doc["extractor"] == extractor_version(chain.crawler.settings)
    assert chain.stat("tass/store/pages") == 2


def test_an_unchanged_refetch_archives_a_version_that_has_no_page(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    """An article stored without its page (before the archive, or a retry after the article
    was written but not its page) gets the page of that same version at its next fetch."""
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))

    async def body():
        await chain.open()
        await chain.process(article(4103))  # no response carried: the archive was off
        await chain.process(article(4103, fetched=_fetched(4103, "later")))
        await chain.close()

    run(body)
    [page] = mongo_db.pages.find({"article_id": 4103})
    assert page["revision"] == 1 and page_of(page).body == b"<html><body>later</body></html>"
    assert mongo_db.articles.find_one({"_id": 4103})["revision"] == 1


def test_a_stale_version_gets_no_page(mongo_uri, mongo_db_name, mongo_db) -> None:
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))
    new = article(4105, modified_at=BASE_TIME + timedelta(hours=2), fetched=_fetched(4105, "new"))
    old = article(
        4105, body=new.body + "\n\nOld.", modified_at=BASE_TIME, fetched=_fetched(4105, "old")
    )

    async def body():
        await chain.open()
        await chain.process(new)
        await chain.process(old)
        await chain.close()

    run(body)
    assert [d["revision"] for d in mongo_db.pages.find({"article_id": 4105})] == [1]
    assert chain.stat("tass/store/stale") == 1


def test_a_batch_reads_only_what_its_writes_cannot_tell(mongo_uri, mongo_db_name, mongo_db) -> None:
    """New articles are one insert (no read-back); unchanged re-fetches, refused by it, are
    touched by one upsert and read their revisions once per batch (for their pages); an edit
    is read before it is written. None of them ever failed: no batch removes failures (the
    first reads which URLs have one)."""
    store, _ = _store(mongo_uri, mongo_db_name, TASS_STORE_FLUSH_INTERVAL=60)
    ids = [4201, 4202, 4203]

    def counters() -> dict[str, int]:
        return dict(mongo_db.client.admin.command("serverStatus")["opcounters"])

    def batch_of(items) -> dict[str, int]:
        before = counters()

        async def body():
            await asyncio.gather(*(store.process_item(i) for i in items), store_flush())

        async def store_flush():
            await asyncio.sleep(0)
            store._batcher.flush()

        run(body)
        after = counters()
        return {k: after[k] - before[k] for k in ("query", "insert", "update", "delete")}

    run(store.open_spider)
    new = batch_of([article(a, fetched=_fetched(a, "v1")) for a in ids])
    assert new == {"query": 1, "insert": 1, "update": 1, "delete": 0}  # failures; articles, pages
    again = batch_of([article(a, fetched=_fetched(a, "v1 again")) for a in ids])
    assert again == {"query": 1, "insert": 1, "update": 2, "delete": 0}  # refused, touched, pages
    edited = batch_of([article(4201, body=article(4201).body + "\n\nMore.", fetched=None)])
    # Refused, the touch refused too, then read: the revision, the edit.
    assert edited == {"query": 1, "insert": 1, "update": 3, "delete": 0}
    run(store.close_spider)
    assert [
        d["revision"] for d in mongo_db.articles.find({"_id": {"$in": ids}}, sort=[("_id", 1)])
    ] == [2, 1, 1]
    assert mongo_db.pages.count_documents({"article_id": {"$in": ids}}) == 3


def test_a_pending_retry_goes_at_once_when_all_in_flight_waits_in_a_batch(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    """The retry middleware waits on the record of its pending retry while its request still
    counts as downloading: with that request the only thing in flight, the batch goes at once
    (else every retry round would wait out the store's interval); with another request
    downloading, it waits for that one's item to join."""
    store, _ = _store(mongo_uri, mongo_db_name, TASS_STORE_FLUSH_INTERVAL=600)
    crawler = store.crawler
    flight = [2, 0]  # requests downloading, responses held by the scraper
    internals.count_in_flight(crawler, lambda: (flight[0], flight[1]))
    url = "https://tass.com/world/91"
    change = failure(url, "http_503", status=503, retry_at=BASE_TIME, retry_request="{}")

    async def body():
        await store.open_spider()
        told = asyncio.ensure_future(
            crawler.signals.send_catch_log_async(signal=retry_state, change=change)
        )
        await asyncio.sleep(0.5)
        assert not told.done(), "another request downloads: its item may still join"
        flight[0] = 1  # that one is done: only the retrying request is in flight
        await asyncio.wait_for(told, timeout=60)  # not the 600 s interval
        assert mongo_db.failures.find_one({"url": url})["retry"]["status"] == 503
        await store.close_spider()

    run(body)


def _deletes(mongo_uri: str) -> int:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_uri)
    try:
        return int(client.admin.command("serverStatus")["opcounters"]["delete"])
    finally:
        client.close()


def test_a_stored_article_removes_the_failures_it_may_have_and_asks_only_for_those(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    """The clean-up (a delete command a batch) goes only for articles that may have a failures
    document: one the store read at its first batch (an earlier run's), one it wrote, one whose
    item says it failed before (another worker's retry), and after ``run_entered`` whatever
    the collection holds then. A batch of articles that never failed sends no delete."""
    store, stats = _store(mongo_uri, mongo_db_name)
    crawler = store.crawler
    earlier = article(101)
    mongo_db.failures.insert_many(
        [
            {"url": earlier.url, "article_id": 101, "reason": "http_404", "attempts": 1},
            {"url": "https://tass.com/world/103-old", "article_id": 103, "attempts": 1},
        ]
    )

    async def body():
        await store.open_spider()
        await asyncio.gather(store.process_item(earlier), store.process_item(article(103)))
        assert mongo_db.failures.count_documents({}) == 0, "by URL and by id"
        before = _deletes(mongo_uri)
        await asyncio.gather(*(store.process_item(article(i)) for i in (105, 107, 109)))
        assert _deletes(mongo_uri) == before, "no article of that batch can have a failure"
        # Its own failure, then the URL stored (a retry of it answered here).
        own = article(111)
        await store.process_item(failure(own.url, "http_503", status=503, article_id=111))
        await store.process_item(own)
        # Another worker's records, written after this store read the collection:
        retried, fed = article(113), article(115)
        mongo_db.failures.insert_many(
            [
                {"url": retried.url, "article_id": 113, "attempts": 0, "retry": {}},
                {"url": fed.url, "article_id": 115, "attempts": 1},
            ]
        )
        retried.failed_before = True  # a retry of it: its request says so
        await store.process_item(retried)
        # A new run: the store reads the collection again.
        crawler.signals.send_catch_log(signal=run_entered, run_id="r2")
        await store.process_item(fed)
        await store.close_spider()

    run(body)
    assert mongo_db.failures.count_documents({}) == 0
    assert stats.get_value("tass/store/recovered") == 5
