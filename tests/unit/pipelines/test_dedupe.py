"""The dedupe stage: content hash, MinHash, and near-duplicates found through MongoDB."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from crawler import defaults
from pipelines.dedupe import DedupePipeline
from pipelines.minhash import bands, content_hash, signature, similarity

from .helpers import BASE_TIME, Chain, article, body_text, make_crawler, near_copy_body, run

EARLY = BASE_TIME
LATE = BASE_TIME + timedelta(hours=5)


def _pair(seed: int = 1):
    """An original and its republished copy under another id, published later."""
    original_body, copy_body = near_copy_body(seed)
    assert similarity(signature(original_body), signature(copy_body)) >= 0.8
    original = article(9001, body=original_body, published_at=EARLY)
    copy = article(9101, body=copy_body, published_at=LATE, title="Reworded headline")
    return original, copy


def _reworded(seed: int) -> tuple[str, str]:
    """(original, copy) as the replica republishes: three words changed in two paragraphs."""
    original = body_text(seed, paragraphs=10)
    paragraphs = original.split("\n\n")
    rng = random.Random(seed)
    for index in (3, 7):
        words = paragraphs[index].split(" ")
        for position in rng.sample(range(1, len(words) - 1), 3):
            words[position] = rng.choice(("reportedly", "earlier", "officials", "on Tuesday"))
        paragraphs[index] = " ".join(words)
    return original, "\n\n".join(paragraphs)


async def _store_all(mongo_uri, mongo_db_name, *items):
    """Each item through its own crawler's chain: only MongoDB connects them."""
    for item in items:
        chain = Chain(make_crawler(mongo_uri, mongo_db_name))
        await chain.open()
        await chain.process(item)
        await chain.close()


def _batched_chain(mongo_uri, mongo_db_name, size):
    """A chain whose look-ups and store batches go only when ``size`` items wait."""
    crawler = make_crawler(
        mongo_uri,
        mongo_db_name,
        TASS_DEDUPE_LOOKUP_BATCH_SIZE=size,
        TASS_DEDUPE_LOOKUP_INTERVAL=3600,
        TASS_DEDUPE_LATE_BATCH_SIZE=size,
        TASS_STORE_BATCH_SIZE=size,
        TASS_STORE_FLUSH_INTERVAL=3600,
    )
    return Chain(crawler)


async def _as_one_batch(chain, items):
    """Every stage for ``items`` side by side: each stage's batch holds all of them."""
    await chain.open()
    await asyncio.gather(*(chain.dedupe.process_item(item) for item in items))
    await asyncio.gather(*(chain.store.process_item(item) for item in items))
    await asyncio.gather(*(chain.dedupe.item_scraped(item) for item in items))
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
    assert item.minhash == signature(item.body)
    assert item.duplicate_of is None
    assert crawler.stats.get_value("tass/dedupe/hashed") == 1


def test_config_needs_mongo_uri_only_when_enabled() -> None:
    from scrapy.exceptions import NotConfigured

    with pytest.raises(NotConfigured, match="MONGO_URI"):
        DedupePipeline.from_crawler(make_crawler(""))
    for bad in (0, -0.5, 1.5, "nan"):
        with pytest.raises(ValueError, match="TASS_DEDUPE_MIN_SIMILARITY"):
            DedupePipeline.from_crawler(make_crawler("mongodb://x", TASS_DEDUPE_MIN_SIMILARITY=bad))
    for name, bad in (
        ("TASS_DEDUPE_LOOKUP_BATCH_SIZE", 0),
        ("TASS_DEDUPE_LOOKUP_INTERVAL", 0),
        ("TASS_DEDUPE_LATE_BATCH_SIZE", 0),
    ):
        with pytest.raises(ValueError, match=name):
            DedupePipeline.from_crawler(make_crawler("mongodb://x", **{name: bad}))
    config = DedupePipeline.from_crawler(make_crawler("mongodb://x")).config
    assert config.min_similarity == defaults.TASS_DEDUPE_MIN_SIMILARITY
    strict = make_crawler("mongodb://x", TASS_DEDUPE_MIN_SIMILARITY="1")
    assert DedupePipeline.from_crawler(strict).config.min_similarity == 1.0


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


def test_a_stored_group_is_re_pointed_in_one_write(mongo_uri, mongo_db_name, mongo_db) -> None:
    first_body, copy_body = near_copy_body(3)
    a = article(9001, body=first_body, published_at=EARLY + timedelta(hours=1))
    c = article(9101, body=copy_body, published_at=LATE)
    run(lambda: _store_all(mongo_uri, mongo_db_name, a, c))

    def writes() -> int:
        counters = mongo_db.client.admin.command("serverStatus")["opcounters"]
        return int(counters["insert"] + counters["update"])

    before = writes()
    oldest = article(9301, body=first_body.lower(), published_at=EARLY)
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))

    async def body():
        await chain.open()
        await chain.process(oldest)
        await chain.close()

    run(body)
    # The store's batch of one (its insert; no page kept), and the group's re-point: one
    # update for the old original, its copy and the new original's mark (three before).
    assert writes() - before == 2
    assert chain.stat("tass/dedupe/reassigned") == 2
    docs = {d["_id"]: d["duplicate_of"] for d in mongo_db.articles.find()}
    assert docs == {9001: 9301, 9101: 9301, 9301: None}


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


def test_reworded_copy_is_marked_and_the_threshold_holds(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    original_body, copy_body = _reworded(7)
    score = similarity(signature(original_body), signature(copy_body))
    assert 0.75 <= score < 1.0
    assert set(bands(signature(original_body))) & set(bands(signature(copy_body)))
    original = article(9001, body=original_body, published_at=EARLY)
    copy = article(9101, body=copy_body, published_at=LATE)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, copy))
    assert copy.duplicate_of == 9001
    assert mongo_db.articles.find_one({"_id": 9101})["duplicate_of"] == 9001

    # Another such pair under a threshold above its similarity: both stay originals.
    other_body, other_copy_body = _reworded(8)
    assert similarity(signature(other_body), signature(other_copy_body)) < 1.0
    other = article(9002, body=other_body, published_at=EARLY)
    other_copy = article(9102, body=other_copy_body, published_at=LATE)

    async def strict() -> None:
        for item in (other, other_copy):
            chain = Chain(make_crawler(mongo_uri, mongo_db_name, TASS_DEDUPE_MIN_SIMILARITY=1.0))
            await chain.open()
            await chain.process(item)
            await chain.close()

    run(strict)
    assert other_copy.duplicate_of is None
    assert mongo_db.articles.find_one({"_id": 9102})["duplicate_of"] is None


@pytest.mark.parametrize("copy_stored_first", [False, True])
def test_copies_in_flight_in_two_workers(
    mongo_uri, mongo_db_name, mongo_db, copy_stored_first
) -> None:
    """Each worker deduplicates before either article is stored, so neither sees the other;
    the re-check after the store (Scrapy's item_scraped) settles it, in either order."""
    original, copy = _pair(8)
    one = Chain(make_crawler(mongo_uri, mongo_db_name))
    two = Chain(make_crawler(mongo_uri, mongo_db_name))

    async def body():
        await one.open()
        await two.open()
        await one.dedupe.process_item(original)
        await two.dedupe.process_item(copy)
        assert original.duplicate_of is None and copy.duplicate_of is None
        first, second = [(two, copy), (one, original)][:: -1 if not copy_stored_first else 1]
        for chain, item in (first, second):
            await chain.store.process_item(item)
            await chain.dedupe.item_scraped(item)
        await one.close()
        await two.close()

    run(body)
    docs = {d["_id"]: d["duplicate_of"] for d in mongo_db.articles.find()}
    assert docs == {9001: None, 9101: 9001}
    late = one.stat("tass/dedupe/late_matches") or two.stat("tass/dedupe/late_matches")
    assert late == 1


def test_the_re_check_is_connected_to_item_scraped() -> None:
    from pydispatch import dispatcher
    from scrapy import signals

    def receivers(crawler):
        found = dispatcher.getAllReceivers(crawler.signals.sender, signals.item_scraped)
        return list(dispatcher.liveReceivers(found))

    crawler = make_crawler("mongodb://x")
    dedupe = DedupePipeline.from_crawler(crawler)
    assert dedupe.item_scraped in receivers(crawler)
    off = make_crawler("", TASS_DEDUPE_NEAR_ENABLED=False)
    off_dedupe = DedupePipeline.from_crawler(off)
    assert off_dedupe.item_scraped not in receivers(off)


def test_articles_arriving_together_share_one_lookup(mongo_uri, mongo_db_name, mongo_db) -> None:
    """Five articles, one candidate query; each still gets its own verdict."""
    original, copy = _pair(9)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original))
    crawler = make_crawler(
        mongo_uri,
        mongo_db_name,
        TASS_DEDUPE_LOOKUP_BATCH_SIZE=5,
        TASS_DEDUPE_LOOKUP_INTERVAL=3600,  # the batch goes when it is full, not on a timer
    )
    dedupe = DedupePipeline.from_crawler(crawler)
    others = [article(9500 + i, body=body_text(500 + i, paragraphs=10)) for i in range(3)]
    local_copy = article(9102, body=copy.body, published_at=LATE + timedelta(hours=1))
    batch = [copy, *others, local_copy]

    async def body():
        await dedupe.open_spider()
        await asyncio.gather(*(dedupe.process_item(item) for item in batch))
        await dedupe.close_spider()

    run(body)
    assert crawler.stats.get_value("tass/dedupe/lookups") == 1
    assert copy.duplicate_of == 9001  # found in MongoDB through the shared query
    assert local_copy.duplicate_of == 9001
    assert [item.duplicate_of for item in others] == [None, None, None]
    assert crawler.stats.get_value("tass/dedupe/near_duplicates") == 2


def test_a_store_batch_is_re_checked_with_one_lookup(mongo_uri, mongo_db_name, mongo_db) -> None:
    chain = _batched_chain(mongo_uri, mongo_db_name, 4)
    items = [article(9600 + i, body=body_text(600 + i, paragraphs=10)) for i in range(4)]
    mongo_db.command("profile", 2)  # the server records each command as it got it
    run(lambda: _as_one_batch(chain, items))
    assert chain.stat("tass/store/batches") == 1
    assert chain.stat("tass/dedupe/lookups") == 2  # the first checks, then the late ones
    assert chain.stat("tass/dedupe/late_skipped") is None
    # Four unrelated articles, each stored as it is: none is read back only to be skipped.
    assert chain.stat("tass/dedupe/own_left_out") == 4
    assert mongo_db.articles.count_documents({"duplicate_of": None}) == 4
    # The late query names the ids to leave out before the bands: a server that tests the
    # clauses in order rejects the batch's own documents on their id, not key by key.
    filters = [
        list(entry["command"]["filter"])
        for entry in mongo_db["system.profile"].find({"ns": f"{mongo_db_name}.articles"})
        if "minhash_bands" in entry["command"].get("filter", {})
    ]
    assert filters == [["minhash_bands"], ["_id", "minhash_bands"]]


def test_a_late_check_reads_back_an_article_stored_otherwise(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    # 9700 is stored in a newer version first; this batch's older fetch of it is stale, so
    # the stored document is not the item's and the late query must not leave it out.
    newer = article(9700, body=body_text(700, paragraphs=10), modified_at=LATE)
    run(lambda: _store_all(mongo_uri, mongo_db_name, newer))
    chain = _batched_chain(mongo_uri, mongo_db_name, 3)
    older = article(9700, body=body_text(701, paragraphs=10), modified_at=EARLY)
    items = [older, *(article(9710 + i, body=body_text(710 + i, paragraphs=10)) for i in range(2))]
    run(lambda: _as_one_batch(chain, items))
    assert chain.stat("tass/store/stale") == 1
    assert [item.stored_as_is for item in items] == [False, True, True]
    assert chain.stat("tass/dedupe/own_left_out") == 2


def test_an_unchanged_refetch_skips_the_late_check(mongo_uri, mongo_db_name, mongo_db) -> None:
    original, copy = _pair(10)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, copy))
    again = article(9101, body=copy.body, published_at=LATE, title="Reworded headline")
    edited = article(9001, body=original.body, published_at=EARLY, title="A new headline")
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))

    async def body():
        await chain.open()
        await chain.process(again)
        await chain.process(edited)
        await chain.close()

    run(body)
    assert again.duplicate_of == 9001
    assert chain.stat("tass/dedupe/late_skipped") == 1  # the edit is re-checked
    assert chain.stat("tass/store/unchanged") == 1 and chain.stat("tass/store/updated") == 1
    docs = {d["_id"]: d["duplicate_of"] for d in mongo_db.articles.find()}
    assert docs == {9001: None, 9101: 9001}


def test_a_lookup_that_outlives_the_retry_deadline_leaves_its_batch_unchecked() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    crawler = make_crawler(
        f"mongodb://127.0.0.1:{port}",
        "unreachable",
        TASS_MONGO_TIMEOUT=0.1,
        TASS_MONGO_RETRY_DEADLINE=0.3,
        TASS_DEDUPE_LOOKUP_BATCH_SIZE=3,
        TASS_DEDUPE_LOOKUP_INTERVAL=3600,
    )
    dedupe = DedupePipeline.from_crawler(crawler)
    items = [article(9700 + i) for i in range(3)]

    async def body():
        await dedupe.open_spider()
        results = await asyncio.gather(*(dedupe.process_item(item) for item in items))
        await dedupe.close_spider()
        return results

    assert run(body) == items  # passed on unmatched, not dropped
    assert crawler.stats.get_value("tass/dedupe/lookups") == 1
    assert crawler.stats.get_value("tass/dedupe/unchecked") == 3
    assert all(item.duplicate_of is None and item.minhash for item in items)


def _reparsed(item, stored_doc, **stored):
    """``item`` as ``scrapy reparse`` hands it over: with its stored version (``stored``
    overrides what ``stored_doc`` holds)."""
    from crawler.items import FetchedPage, StoredVersion

    version = StoredVersion({**stored_doc, **stored})
    item.fetched = FetchedPage(
        url=item.url, final_url=item.url, status=200, headers=(), fetched_at=LATE, body=b"",
        article_id=item.id, revision=1, stored=version,
    )  # fmt: skip
    return item


def _dedupe_alone(mongo_uri, mongo_db_name, item):
    crawler = make_crawler(mongo_uri, mongo_db_name)
    dedupe = DedupePipeline.from_crawler(crawler)

    async def body():
        await dedupe.open_spider()
        await dedupe.process_item(item)
        await dedupe.item_scraped(item)
        await dedupe.close_spider()

    run(body)
    return crawler.stats


@pytest.mark.parametrize("extractor", ["same", "older code"])
def test_a_page_reparsed_as_stored_keeps_its_group_without_a_lookup(
    mongo_uri, mongo_db_name, mongo_db, extractor
) -> None:
    original, copy = _pair(11)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, copy))
    stored = mongo_db.articles.find_one({"_id": 9101})
    assert stored["duplicate_of"] == 9001
    again = article(9101, body=copy.body, published_at=LATE, title="Reworded headline")
    # The group stands as stored (even a mark no look-up would make again).
    overrides = {"duplicate_of": 4242}
    if extractor != "same":
        overrides["extractor"] = "0+older"  # the signature is computed, and comes out the same
    stats = _dedupe_alone(mongo_uri, mongo_db_name, _reparsed(again, stored, **overrides))
    assert stats.get_value("tass/dedupe/as_stored") == 1
    assert stats.get_value("tass/dedupe/lookups") is None
    assert stats.get_value("tass/dedupe/late_skipped") == 1
    assert again.duplicate_of == 4242
    assert (again.content_hash, again.minhash) == (stored["content_hash"], stored["minhash"])
    assert again.minhash_bands == stored["minhash_bands"]


@pytest.mark.parametrize("differs", ["text", "signature"])
def test_a_page_reparsed_unlike_its_stored_version_is_looked_up(
    mongo_uri, mongo_db_name, mongo_db, differs
) -> None:
    original, copy = _pair(12)
    unrelated = body_text(99, paragraphs=10)
    run(lambda: _store_all(mongo_uri, mongo_db_name, original, copy))
    stored = mongo_db.articles.find_one({"_id": 9101})
    if differs == "text":  # the page now extracts another body: no longer anyone's copy
        again = article(9101, body=unrelated, published_at=LATE, title="Reworded headline")
        overrides: dict = {}
        expected = None
    else:  # same text, but the stored signature is not what this code makes of it
        again = article(9101, body=copy.body, published_at=LATE, title="Reworded headline")
        overrides = {"minhash": list(range(64)), "extractor": "0+older", "duplicate_of": 4242}
        expected = 9001
    stats = _dedupe_alone(mongo_uri, mongo_db_name, _reparsed(again, stored, **overrides))
    assert stats.get_value("tass/dedupe/as_stored") is None
    assert stats.get_value("tass/dedupe/lookups") >= 1
    assert again.duplicate_of == expected
    assert again.minhash == signature(again.body)
