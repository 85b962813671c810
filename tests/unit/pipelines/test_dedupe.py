"""The dedupe stage: content hash, SimHash, and near-duplicates found through MongoDB."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.dedupe import DedupePipeline
from pipelines.simhash import content_hash, distance, simhash

from .helpers import BASE_TIME, Chain, article, body_text, make_crawler, near_copy_body, run

EARLY = BASE_TIME
LATE = BASE_TIME + timedelta(hours=5)


def _pair(seed: int = 1):
    """An original and its republished copy under another id, published later."""
    original_body, copy_body = near_copy_body(seed)
    assert distance(simhash(original_body), simhash(copy_body)) <= 3
    original = article(9001, body=original_body, published_at=EARLY)
    copy = article(9101, body=copy_body, published_at=LATE, title="Reworded headline")
    return original, copy


async def _store_all(mongo_uri, mongo_db_name, *items):
    """Each item through its own crawler's chain: only MongoDB connects them."""
    for item in items:
        chain = Chain(make_crawler(mongo_uri, mongo_db_name))
        await chain.open()
        await chain.process(item)
        await chain.close()


def test_hashes_set_without_mongodb() -> None:
    crawler = make_crawler("", TASS_DEDUPE_NEAR_ENABLED=False)
    dedupe = DedupePipeline.from_crawler(crawler)
    item = article(9001)

    async def body():
        await dedupe.open_spider()
        await dedupe.process_item(item)
        await dedupe.close_spider()

    run(body)
    assert item.content_hash == content_hash(item.title, item.lead, item.body)
    assert item.simhash == simhash(item.body)
    assert item.duplicate_of is None
    assert crawler.stats.get_value("tass/dedupe/hashed") == 1


def test_config_needs_mongo_uri_only_when_enabled() -> None:
    from scrapy.exceptions import NotConfigured

    with pytest.raises(NotConfigured, match="MONGO_URI"):
        DedupePipeline.from_crawler(make_crawler(""))
    with pytest.raises(ValueError, match="TASS_DEDUPE_MAX_DISTANCE"):
        DedupePipeline.from_crawler(make_crawler("mongodb://x", TASS_DEDUPE_MAX_DISTANCE=-1))


def test_copy_published_later_is_marked(mongo_uri, mongo_db_name, mongo_db) -> None:
    original, copy = _pair()
    unrelated = article(9201, body=body_text(77, paragraphs=10), published_at=LATE)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, copy, unrelated))
    assert original.duplicate_of is None
    assert copy.duplicate_of == 9001
    assert unrelated.duplicate_of is None
    docs = {d["_id"]: d for d in mongo_db.articles.find()}
    assert set(docs) == {9001, 9101, 9201}  # the copy is stored too, marked
    assert docs[9101]["duplicate_of"] == 9001
    assert docs[9001]["duplicate_of"] is None and docs[9201]["duplicate_of"] is None


def test_original_arriving_after_its_copy_takes_over(mongo_uri, mongo_db_name, mongo_db) -> None:
    original, copy = _pair(2)
    run(lambda: _store_all(mongo_uri, mongo_db_name, copy, original))
    assert copy.duplicate_of is None  # nothing older was known when it came
    assert original.duplicate_of is None
    docs = {d["_id"]: d for d in mongo_db.articles.find()}
    assert docs[9101]["duplicate_of"] == 9001
    assert docs[9001]["duplicate_of"] is None


def test_an_older_original_takes_over_the_whole_group(mongo_uri, mongo_db_name, mongo_db) -> None:
    first_body, copy_body = near_copy_body(3)
    a = article(9001, body=first_body, published_at=EARLY + timedelta(hours=1))
    c = article(9101, body=copy_body, published_at=LATE)
    oldest = article(9301, body=first_body.lower(), published_at=EARLY)
    run(lambda: _store_all(mongo_uri, mongo_db_name, a, c, oldest))
    docs = {d["_id"]: d["duplicate_of"] for d in mongo_db.articles.find()}
    assert docs == {9001: 9301, 9101: 9301, 9301: None}
    # A later copy of the group points at the group's original, never at a copy.
    late = article(9401, body=copy_body, published_at=LATE + timedelta(hours=1))
    run(lambda: _store_all(mongo_uri, mongo_db_name, late))
    assert late.duplicate_of == 9301


def test_refetch_is_not_its_own_duplicate(mongo_uri, mongo_db_name, mongo_db) -> None:
    original, _ = _pair(4)
    again = article(9001, body=original.body, published_at=EARLY)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, again))
    assert again.duplicate_of is None
    assert mongo_db.articles.find_one({"_id": 9001})["duplicate_of"] is None


def test_copies_in_flight_in_one_process(mongo_uri, mongo_db_name) -> None:
    """Neither is stored yet: the process's recent articles catch them, in either order."""
    crawler = make_crawler(mongo_uri, mongo_db_name)
    dedupe = DedupePipeline.from_crawler(crawler)
    original, copy = _pair(5)
    original2, copy2 = _pair(6)
    original2.id, copy2.id = 9002, 9102

    async def body():
        await dedupe.open_spider()
        await dedupe.process_item(original)
        await dedupe.process_item(copy)
        await dedupe.process_item(copy2)  # the copy first this time
        await dedupe.process_item(original2)
        await dedupe.close_spider()

    run(body)
    assert (original.duplicate_of, copy.duplicate_of) == (None, 9001)
    assert (original2.duplicate_of, copy2.duplicate_of) == (None, 9002)
    assert crawler.stats.get_value("tass/dedupe/near_duplicates") == 1
