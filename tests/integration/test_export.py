"""``scrapy export`` of a crawled replica with edited articles (two runs, a day apart).

JSON Lines and Parquet read back (pyarrow for Parquet) to exactly the stored documents; CSV
to the same rows; the WARC passes warcio's own checker (every record's digests) and holds one
response record per stored version, each the archived page of that version. Filters and
``--fields`` choose what is written.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker

from crawler.archive import page_of
from crawler.export import COLUMNS, JSON_CELLS, TIMES
from replica.launch import ReplicaProcess
from tests.crawls import REPO, CrawlEnv, crawl_envs

pytestmark = pytest.mark.slow

SETTINGS = {"TASS_RECHECK_HOURS": "48", "TASS_SINCE_DAYS": "30"}


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    start = (date.today() - timedelta(days=6)).isoformat()
    with ReplicaProcess(
        articles=300, seed=17, extra_args=["--no-hostile", "--start-date", start]
    ) as process:
        yield process


@pytest.fixture(scope="module")
def crawled(crawl_env_module, replica) -> CrawlEnv:
    """The replica crawled, a day passed (new and edited articles), crawled again."""
    env: CrawlEnv = crawl_env_module(replica)
    assert env.run_workers(1, "-a", "since=all", **SETTINGS) == [0], env.log_text()[-3000:]
    replica.advance(1)
    assert env.run_workers(1, **SETTINGS) == [0], env.log_text()[-3000:]
    assert env.db().articles.count_documents({"revision": {"$gt": 1}}) > 0, "no edit to export"
    return env


@pytest.fixture(scope="module")
def crawl_env_module(redis_server, mongo_server, tmp_path_factory):
    """``crawl_env_factory`` for the whole module (one crawl serves every test here)."""
    with crawl_envs(redis_server, mongo_server, tmp_path_factory.mktemp("export")) as make:
        yield make


def export(env: CrawlEnv, *args: str, output: Path | None = None) -> bytes:
    argv = [sys.executable, "-m", "scrapy", "export", *args]
    if output is not None:
        argv += ["--output", str(output)]
    result = subprocess.run(
        argv, cwd=REPO, env=env.env(), capture_output=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result.stdout


def expected_rows(env: CrawlEnv, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    docs = env.db().articles.find(query or {}).sort("_id", 1)
    return [{name: doc.get("_id" if name == "id" else name) for name in COLUMNS} for doc in docs]


def parse_times(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v.replace("Z", "+00:00")) if k in TIMES and v else v
        for k, v in row.items()
    }


def test_jsonl_reads_back_to_the_stored_documents(crawled) -> None:
    out = export(crawled, "--format", "jsonl")
    rows = [parse_times(json.loads(line)) for line in out.decode().splitlines()]
    assert rows == expected_rows(crawled)
    assert list(json.loads(out.splitlines()[0])) == list(COLUMNS)  # the documented order
    assert b'Z"' in out and b"+03:00" not in out  # ISO 8601, UTC


def test_parquet_reads_back_to_the_stored_documents(crawled, tmp_path) -> None:
    path = tmp_path / "articles.parquet"
    export(crawled, "--format", "parquet", output=path)
    table = pq.read_table(path)
    assert table.schema.names == list(COLUMNS)
    assert str(table.schema.field("published_at").type) == "timestamp[ms, tz=UTC]"
    rows = [
        {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}
        for row in table.to_pylist()
    ]
    for row in rows:  # a Parquet map reads back as (key, value) pairs
        row["extracted"] = dict(row["extracted"]) if row["extracted"] is not None else None
    assert rows == expected_rows(crawled)


def test_csv_holds_the_same_rows(crawled) -> None:
    out = export(crawled, "--format", "csv").decode()
    reader = csv.DictReader(io.StringIO(out, newline=""))
    assert reader.fieldnames == list(COLUMNS)
    got = []
    for row in reader:
        value: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
        for name in ("id", "duplicate_of", "revision"):
            value[name] = int(value[name]) if value[name] is not None else None
        for name in JSON_CELLS:
            value[name] = json.loads(value[name]) if value[name] is not None else None
        got.append(parse_times(value))
    want = [{k: (v if v != "" else None) for k, v in r.items()} for r in expected_rows(crawled)]
    assert got == want


def test_warc_validates_and_holds_one_response_per_stored_version(crawled, tmp_path) -> None:
    path = tmp_path / "pages.warc.gz"
    export(crawled, "--format", "warc", output=path)
    checker = Checker(SimpleNamespace(inputs=[str(path)], verbose=False))
    assert checker.process_all() == 0  # warcio's own checker: every digest passes
    db = crawled.db()
    versions = {
        (doc["_id"], revision)
        for doc in db.articles.find({}, {"revision": 1})
        for revision in range(1, doc["revision"] + 1)
    }
    assert any(revision > 1 for _, revision in versions)
    pages = {(p["article_id"], p["revision"]): p for p in db.pages.find()}
    assert set(pages) == versions  # the archive holds every stored version
    seen = []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response":
                assert record.rec_type == "warcinfo"
                continue
            key = (
                int(record.rec_headers.get_header("WARC-Tass-Article-Id")),
                int(record.rec_headers.get_header("WARC-Tass-Revision")),
            )
            seen.append(key)
            page = page_of(pages[key])
            assert record.rec_headers.get_header("WARC-Target-URI") == page.final_url
            assert record.http_headers.get_statuscode() == str(page.status)
            assert record.content_stream().read() == page.body
    assert sorted(seen) == sorted(versions)  # one response record per version, no more


def test_filters_and_fields_choose_what_is_written(crawled) -> None:
    db = crawled.db()
    some = db.articles.find_one({"kind": "news"}, sort=[("published_at", 1)])
    day = some["published_at"].date().isoformat()
    section = some["section"]
    out = export(
        crawled,
        "--format", "jsonl", "--since", day, "--until", day, "--section", section,
        "--kind", "news", "--fields", "title,id,published_at",
    )  # fmt: skip
    rows = [json.loads(line) for line in out.decode().splitlines()]
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    query = {
        "published_at": {"$gte": start, "$lt": start + timedelta(days=1)},
        "section": section,
        "kind": "news",
    }
    assert [r["id"] for r in rows] == [d["_id"] for d in db.articles.find(query).sort("_id", 1)]
    assert rows and all(list(r) == ["title", "id", "published_at"] for r in rows)


def test_bad_options_are_refused_with_a_message(crawled) -> None:
    for args, message in (
        (["--format", "jsonl", "--fields", "title,nope"], "unknown nope"),
        (["--format", "warc", "--fields", "title"], "does not apply to warc"),
        (["--format", "csv", "--since", "yesterday"], "--since must be a date"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "scrapy", "export", *args],
            cwd=REPO,
            env=crawled.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
