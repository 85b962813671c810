"""The re-extraction stage against a real MongoDB-protocol server: only what changed is
written, never a revision; a newer stored version wins; failures leave the document alone."""

from __future__ import annotations

import dataclasses
from datetime import UTC

from crawler.items import FetchedPage, PageFailure
from pipelines.common import utcnow
from pipelines.reextract import ReextractPipeline, ReextractWriter, changed_fields
from pipelines.schema import article_doc

from .helpers import BASE_TIME, Chain, article, make_crawler, run


def _archived(aid: int, revision: int = 1) -> FetchedPage:
    return FetchedPage(
        url=f"https://tass.com/politics/{aid}",
        final_url=f"https://tass.com/politics/{aid}",
        status=200,
        headers=(),
        fetched_at=BASE_TIME,
        body=b"<html></html>",
        article_id=aid,
        revision=revision,
    )


def _stored(mongo_uri, mongo_db_name, *items) -> None:
    chain = Chain(make_crawler(mongo_uri, mongo_db_name))

    async def body():
        await chain.open()
        for item in items:
            await chain.process(item)
        await chain.close()

    run(body)


def test_changed_fields_compares_as_mongodb_stores() -> None:
    item = article(7, published_at=BASE_TIME.replace(microsecond=123456))
    doc = article_doc(item)
    stored = {**doc, "published_at": BASE_TIME.replace(microsecond=123000, tzinfo=UTC)}
    assert changed_fields(doc, stored) == []  # BSON keeps milliseconds
    assert changed_fields({**doc, "title": "Other"}, stored) == ["title"]
    assert changed_fields(doc, {k: v for k, v in stored.items() if k != "mark"}) == ["mark"]


def test_only_changed_documents_are_written_and_no_revision(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    _stored(mongo_uri, mongo_db_name, article(5001), article(5003))
    before = {d["_id"]: d for d in mongo_db.articles.find()}
    crawler = make_crawler(mongo_uri, mongo_db_name)
    chain = Chain(crawler)
    stage = ReextractPipeline.from_crawler(crawler)
    changed = article(5001, title="A better headline", fetched=_archived(5001))
    same = article(5003, fetched=_archived(5003))

    async def body():
        await chain.dedupe.open_spider()
        await stage.open_spider()
        for item in (changed, same):
            valid = chain.validate.process_item(chain.clean.process_item(item))
            await stage.process_item(await chain.dedupe.process_item(valid))
        await stage.close_spider()
        await chain.dedupe.close_spider()

    run(body)
    after = {d["_id"]: d for d in mongo_db.articles.find()}
    assert after[5003] == before[5003]
    new, old = after[5001], before[5001]
    assert new["title"] == "A better headline" and new["content_hash"] != old["content_hash"]
    assert new["revision"] == 1 and new["last_seen_at"] == old["last_seen_at"]
    assert new["reextracted_at"] and new["extractor"]
    assert mongo_db.revisions.count_documents({}) == 0
    stats = crawler.stats
    assert stats.get_value("tass/reparse/updated") == 1
    assert stats.get_value("tass/reparse/unchanged") == 1
    assert stats.get_value("tass/reparse/changed/title") == 1
    assert stats.get_value("tass/reparse/changed/content_hash") == 1
    assert stats.get_value("tass/reparse/changed/minhash") is None  # rewritten, not counted


def test_a_newer_stored_version_wins(mongo_uri, mongo_db_name, mongo_db) -> None:
    first = article(5101)
    _stored(mongo_uri, mongo_db_name, first, article(5101, body=first.body + "\n\nEdited."))
    writer = ReextractWriter(mongo_db.articles, "x")

    old_page = article_doc(dataclasses.replace(first, title="Re-extracted"))
    [result] = writer.write(
        [(old_page, 1, None)], utcnow()
    )  # its page is revision 1's; 2 is stored
    assert result.outcome == "superseded"
    assert mongo_db.articles.find_one({"_id": 5101})["title"] == first.title
    [gone] = writer.write([(article_doc(article(5199)), 1, None)], utcnow())
    assert gone.outcome == "missing"


def test_a_rival_write_between_read_and_update_is_superseded(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    _stored(mongo_uri, mongo_db_name, article(5201))

    class Rival(ReextractWriter):
        """A crawl stores a new version right after this writer read the stored one."""

        def __init__(self, articles) -> None:
            super().__init__(articles, "x")
            self.articles = _Racing(articles)

    [result] = Rival(mongo_db.articles).write(
        [(article_doc(article(5201, title="Mine")), 1, None)], utcnow()
    )
    assert result.outcome == "superseded"
    assert mongo_db.articles.find_one({"_id": 5201})["title"] == "Rival"


def test_a_rival_write_after_the_reparse_read_the_document_is_superseded(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    _stored(mongo_uri, mongo_db_name, article(5202))
    known = mongo_db.articles.find_one({"_id": 5202})  # as the reparse worker read it
    mongo_db.articles.update_one(
        {"_id": 5202}, {"$set": {"title": "Rival", "content_hash": "h2", "revision": 2}}
    )
    writer = ReextractWriter(mongo_db.articles, "x")
    [result] = writer.write([(article_doc(article(5202, title="Mine")), 1, known)], utcnow())
    assert result.outcome == "superseded"
    assert mongo_db.articles.find_one({"_id": 5202})["title"] == "Rival"


class _Racing:
    """A collection whose first ``find`` is followed by a rival's write."""

    def __init__(self, collection) -> None:
        self.collection = collection
        self.raced = False

    def find(self, *args, **kwargs):
        found = list(self.collection.find(*args, **kwargs))
        if not self.raced:
            self.raced = True
            self.collection.update_one(
                {"_id": 5201}, {"$set": {"title": "Rival", "content_hash": "h2", "revision": 2}}
            )
        return found

    def bulk_write(self, *args, **kwargs):
        return self.collection.bulk_write(*args, **kwargs)


def test_failures_and_pages_of_another_article_leave_documents_alone(
    mongo_uri, mongo_db_name, mongo_db
) -> None:
    _stored(mongo_uri, mongo_db_name, article(5301))
    before = mongo_db.articles.find_one({"_id": 5301})
    crawler = make_crawler(mongo_uri, mongo_db_name)
    stage = ReextractPipeline.from_crawler(crawler)
    elsewhere = article(5399, fetched=_archived(5301))  # the page now names another article
    failed = PageFailure(url="https://tass.com/politics/5301", reason="missing_field:body")

    async def body():
        await stage.open_spider()
        moved = await stage.process_item(elsewhere)
        kept = await stage.process_item(failed)
        await stage.close_spider()
        return moved, kept

    moved, kept = run(body)
    assert isinstance(moved, PageFailure) and moved.reason == "reparse:id_changed"
    assert moved.article_id == 5301 and kept is failed
    assert mongo_db.articles.find_one({"_id": 5301}) == before
    assert mongo_db.articles.find_one({"_id": 5399}) is None
    assert crawler.stats.get_value("tass/reparse/failed/missing_field:body") == 1
    assert crawler.stats.get_value("tass/reparse/failed/reparse:id_changed") == 1
