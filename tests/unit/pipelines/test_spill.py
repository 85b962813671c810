"""Spilled batches: written whole, read back into a real MongoDB-protocol server when a store
opens, deleted only once written; anything else is kept with a reason."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler.archive import page_of
from crawler.items import FetchedPage
from pipelines import spill
from pipelines.schema import page_for
from pipelines.spill import Record
from pipelines.store import StorePipeline, article_doc, failure_doc

from .helpers import BASE_TIME, article, failure, make_crawler, run


def _records(*ids: int, failures: tuple[str, ...] = ()) -> list[Record]:
    records = [Record("articles", article_doc(article(i))) for i in ids]
    records += [Record("failures", failure_doc(failure(url, attempts=2))) for url in failures]
    return records


def _open_and_close(mongo_uri: str, mongo_db_name: str, data_dir: Path) -> StorePipeline:
    store = StorePipeline.from_crawler(
        make_crawler(mongo_uri, mongo_db_name, TASS_DATA_DIR=str(data_dir))
    )

    async def body():
        await store.open_spider()
        await store.close_spider()

    run(body)
    return store


def _stat(store: StorePipeline, key: str) -> int | None:
    return store.stats.get_value(f"tass/store/{key}")


def test_a_spill_file_is_written_whole_and_reads_back_the_same(tmp_path) -> None:
    records = _records(11, 12, failures=("https://tass.com/world/13",))
    path = spill.write(tmp_path / "spill", records)
    assert path.parent == tmp_path / "spill" and path.match(spill.PATTERN)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    back = spill.read(path)
    assert back == records
    doc = back[0].doc
    assert doc["published_at"] == article(11).published_at  # an aware datetime, not a string
    assert doc["published_at"].tzinfo is not None
    assert doc["minhash"] == records[0].doc["minhash"]  # 64-bit integers kept exactly


def test_a_store_writes_spilled_batches_back_when_it_opens(
    mongo_uri, mongo_db_name, mongo_db, tmp_path
) -> None:
    folder = tmp_path / "spill"
    spill.write(folder, _records(21, 22))
    spill.write(folder, _records(23, failures=("https://tass.com/world/24",)))
    store = _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    assert sorted(d["_id"] for d in mongo_db.articles.find()) == [21, 22, 23]
    stored = mongo_db.articles.find_one({"_id": 21})
    assert stored["revision"] == 1 and stored["body"] == article(21).body
    assert mongo_db.failures.find_one({"url": "https://tass.com/world/24"})["attempts"] == 2
    assert list(folder.iterdir()) == []  # each file deleted once written
    assert _stat(store, "spill_replayed") == 4
    assert _stat(store, "spill_files_replayed") == 2
    assert _stat(store, "inserted") == 3 and _stat(store, "failures") == 1


def test_a_spilled_article_brings_its_raw_page_back(
    mongo_uri, mongo_db_name, mongo_db, tmp_path
) -> None:
    body = b"<html><body>as fetched</body></html>"
    fetched = FetchedPage(
        url="https://tass.com/politics/31",
        final_url="https://tass.com/politics/31",
        status=200,
        headers=(("Content-Type", "text/html"),),
        fetched_at=BASE_TIME,
        body=body,
    )
    item = article(31, fetched=fetched)
    doc = article_doc(item)
    page = page_for(item, doc)
    path = spill.write(tmp_path / "spill", [Record("articles", doc, page)])
    back = spill.read(path)[0].page
    assert back is not None and page is not None
    assert {**back, "body": bytes(back["body"])} == {**page, "body": bytes(page["body"])}
    _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    [stored] = mongo_db.pages.find({"article_id": 31})
    assert stored["revision"] == 1 and page_of(stored).body == body
    # A page that is not its record's article's is not a spill file.
    spill.write(tmp_path / "spill", [Record("articles", article_doc(article(33)), page)])
    _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    assert mongo_db.articles.find_one({"_id": 33}) is None
    assert [p.suffix for p in (tmp_path / "spill").iterdir()] == [".bad"]


def test_an_article_written_back_twice_is_stored_once(
    mongo_uri, mongo_db_name, mongo_db, tmp_path
) -> None:
    # A store that died after MongoDB took the batch but before the file was deleted.
    spill.write(tmp_path / "spill", _records(31, 32))
    _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    spill.write(tmp_path / "spill", _records(31, 32))
    store = _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    assert mongo_db.articles.count_documents({}) == 2
    assert {d["revision"] for d in mongo_db.articles.find()} == {1}
    assert mongo_db.revisions.count_documents({}) == 0
    assert _stat(store, "unchanged") == 2


def test_files_that_are_not_spill_files_are_kept_aside_and_the_rest_written(
    mongo_uri, mongo_db_name, mongo_db, tmp_path, caplog
) -> None:
    folder = tmp_path / "spill"
    good = spill.write(folder, _records(41))
    truncated = folder / "store-1-1.jsonl"
    truncated.write_text(good.read_text()[:-40])  # an old, non-atomic writer cut short
    foreign = folder / "store-1-2.jsonl"
    foreign.write_text('{"collection": "users", "doc": {"url": "x"}}\n')
    with caplog.at_level(logging.ERROR, logger="pipelines.spill"):
        store = _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    assert mongo_db.articles.count_documents({}) == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "store-1-1.jsonl.bad",
        "store-1-2.jsonl.bad",
    ]
    assert _stat(store, "spill_bad_files") == 2
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "store-1-1.jsonl line 1: not extended JSON" in messages
    assert "unknown collection 'users'" in messages


def test_records_mongodb_cannot_take_are_kept_as_rejected(
    mongo_uri, mongo_db_name, mongo_db, tmp_path
) -> None:
    folder = tmp_path / "spill"
    path = spill.write(folder, _records(51))
    # A foreign record: an id no 64-bit BSON integer can hold.
    path.write_text(
        path.read_text() + '{"collection": "articles", "doc": {"_id": 99999999999999999999, '
        '"url": "https://tass.com/world/99999999999999999999"}}\n'
    )
    store = _open_and_close(mongo_uri, mongo_db_name, tmp_path)
    assert mongo_db.articles.count_documents({}) == 1
    rejected = folder / f"{path.name}.rejected"
    assert [p.name for p in folder.iterdir()] == [rejected.name]
    assert [r.doc["_id"] for r in spill.read(rejected)] == [99999999999999999999]
    assert _stat(store, "spill_rejected") == 1 and _stat(store, "spill_replayed") == 1


def test_a_file_another_process_holds_is_left_to_it(
    mongo_uri, mongo_db_name, mongo_db, tmp_path
) -> None:
    path = spill.write(tmp_path / "spill", _records(61))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        _open_and_close(mongo_uri, mongo_db_name, tmp_path)
        assert path.exists() and mongo_db.articles.count_documents({}) == 0
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    _open_and_close(mongo_uri, mongo_db_name, tmp_path)  # its lock died with it
    assert not path.exists() and mongo_db.articles.count_documents({}) == 1


def test_an_abandoned_temporary_file_is_set_aside_and_a_fresh_one_left(tmp_path) -> None:
    folder = tmp_path / "spill"
    folder.mkdir()
    old, fresh = folder / ".store-7-1.jsonl.tmp", folder / ".store-7-2.jsonl.tmp"
    old.write_text("partial")
    fresh.write_text("being written")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    stats = make_crawler().stats

    async def never(records):
        raise AssertionError("nothing to write back")

    run(lambda: spill.replay(folder, never, stats))
    assert sorted(p.name for p in folder.iterdir()) == [fresh.name, "store-7-1.jsonl.tmp.bad"]
    assert stats.get_value("tass/store/spill_bad_files") == 1


def test_a_batch_mongodb_does_not_take_now_is_kept_for_later(tmp_path, caplog) -> None:
    path = spill.write(tmp_path / "spill", _records(71))
    stats = make_crawler().stats

    async def unreachable(records):
        raise RuntimeError("MongoDB unreachable after 9 attempts")

    with caplog.at_level(logging.ERROR, logger="pipelines.spill"):
        run(lambda: spill.replay(tmp_path / "spill", unreachable, stats))
    assert path.exists()
    assert stats.get_value("tass/store/spill_kept") == 1
    assert "kept for the next store to open" in caplog.text


@pytest.mark.parametrize("missing", [True, False])
def test_no_spill_folder_or_an_empty_one_is_nothing_to_do(tmp_path, missing) -> None:
    if not missing:
        (tmp_path / "spill").mkdir()
    stats = make_crawler().stats

    async def never(records):
        raise AssertionError("nothing to write back")

    run(lambda: spill.replay(tmp_path / "spill", never, stats))
    assert stats.get_value("tass/store/spill_files_replayed") is None
