"""``scrapy reparse`` after a deliberate change to a page object, on a crawled replica.

The crawl archives every stored version; then the page object is changed in a copy of the
code (interviews' titles come out in capitals: a real edit of ``crawler/pages/article.py``, so
the extractor version changes too) and ``scrapy reparse`` runs from that copy with two worker
processes. It must update exactly the interviews, and nothing else; make no request to the
replica (its own counter); write no revision; report the changes per field. An interrupted job
resumes where it stopped and counts every article once.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from replica.launch import ReplicaProcess
from tests.crawls import REPO, CrawlEnv

pytestmark = pytest.mark.slow

PATCH = """

# --- A deliberate change to the page object (tests/integration/test_reparse.py) ------------
_extract_before_the_change = ArticlePage.extract


def _extract_with_capital_interview_titles(self, hints=None):  # type: ignore[no-untyped-def]
    extraction = _extract_before_the_change(self, hints)
    if extraction.item.kind == "interview":
        extraction.item.title = extraction.item.title.upper()
    return extraction


ArticlePage.extract = _extract_with_capital_interview_titles  # type: ignore[method-assign]
"""

BOOKKEEPING = ("extractor", "reextracted_at")


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaProcess]:
    with ReplicaProcess(articles=300, seed=13) as process:
        yield process


@pytest.fixture(scope="module")
def changed_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project whose article page object was changed."""
    root = tmp_path_factory.mktemp("changed-code")
    skip = shutil.ignore_patterns("__pycache__")
    for package in ("crawler", "pipelines"):
        shutil.copytree(REPO / package, root / package, ignore=skip)
    shutil.copy(REPO / "scrapy.cfg", root / "scrapy.cfg")
    article = root / "crawler" / "pages" / "article.py"
    article.write_text(article.read_text(encoding="utf-8") + PATCH, encoding="utf-8")
    return root


def reparse(
    env: CrawlEnv, code: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "reparse", *args],
        cwd=code,
        env=env.env(PYTHONPATH=str(code), **extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in BOOKKEEPING}


def per_field(report: str) -> dict[str, int]:
    block = report.split("changes per field:", 1)[1].split("no longer extract", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\w+)\s+(\d+)$", block, re.MULTILINE)}


def test_reparse_updates_exactly_what_the_change_affects(
    crawl_env_factory, replica, changed_code
) -> None:
    env = crawl_env_factory(replica)
    assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
    db = env.db()
    before = {doc["_id"]: doc for doc in db.articles.find()}
    pages = {(p["article_id"], p["revision"]) for p in db.pages.find({}, {"body": 0})}
    assert pages == {(i, d["revision"]) for i, d in before.items()}  # every version archived
    revisions = db.revisions.count_documents({})
    interviews = {i for i, d in before.items() if d["kind"] == "interview"}
    affected = {i for i in interviews if before[i]["title"] != before[i]["title"].upper()}
    assert len(affected) >= 3, "the replica should hold a few interviews"
    requests_before = replica.stats()["total"]

    result = reparse(env, changed_code, "--workers", "2")
    print(result.stdout)  # the per-field change counts
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]

    assert replica.stats()["total"] == requests_before, "reparse made requests to the site"
    after = {doc["_id"]: doc for doc in db.articles.find()}
    assert set(after) == set(before)
    changed = {i for i in before if fields(after[i]) != fields(before[i])}
    assert changed == affected
    for i in affected:
        old, new = before[i], after[i]
        assert new["title"] == old["title"].upper()
        assert new["content_hash"] != old["content_hash"]
        assert new["revision"] == old["revision"]  # a re-extraction is not an edit
        assert new["first_seen_at"] == old["first_seen_at"]
        assert new["last_seen_at"] == old["last_seen_at"]
        assert new["extractor"] != old["extractor"] and new["reextracted_at"]
        assert {k for k in fields(new) if new[k] != old.get(k)} == {"title", "content_hash"}
    for i in set(before) - affected:
        assert after[i] == before[i]  # not written at all
    assert db.revisions.count_documents({}) == revisions
    assert per_field(result.stdout) == {"title": len(affected), "content_hash": len(affected)}
    assert f"documents changed:   {len(affected)}" in result.stdout
    assert f"re-extracted {len(before)} of {len(before)} articles" in result.stdout

    # The same job again is not run twice; with the same code nothing more changes anyway.
    again = reparse(env, changed_code, "--workers", "1")
    assert again.returncode == 0 and "already done" in again.stderr
    assert {doc["_id"]: doc for doc in db.articles.find()} == after
    assert replica.stats()["total"] == requests_before


def test_an_interrupted_reparse_resumes_and_counts_each_article_once(
    crawl_env_factory, replica, changed_code
) -> None:
    env = crawl_env_factory(replica)
    assert env.run_workers(1, "-a", "since=all") == [0], env.log_text()[-3000:]
    total = env.db().articles.count_documents({})
    small = {"TASS_REPARSE_CHUNK_SIZE": "5"}  # many chunks: there is something left to resume
    argv = [sys.executable, "-m", "scrapy", "reparse", "--workers", "1"]
    first = subprocess.Popen(
        argv,
        cwd=changed_code,
        env=env.env(PYTHONPATH=str(changed_code), **small),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(env.redis_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _articles_done(client, env.prefix):
            time.sleep(0.05)
        assert _articles_done(client, env.prefix), "the job never started"
        first.send_signal(signal.SIGTERM)  # as a stop or Ctrl-C would
        out, err = first.communicate(timeout=120)
        assert first.returncode == 1, out + err[-2000:]
        assert "run the same command again to resume" in err
        done_then = _articles_done(client, env.prefix)
        assert 0 < done_then < total, "the interruption came too late to leave work"
    finally:
        client.close()

    second = reparse(env, changed_code, "--workers", "2", **small)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    assert f"re-extracted {total} of {total} articles" in second.stdout
    interviews = env.db().articles.count_documents({"kind": "interview"})
    assert per_field(second.stdout) == {"title": interviews, "content_hash": interviews}


def _articles_done(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}:reparse:*:counts"))
    return sum(int(client.hget(key, "articles") or 0) for key in keys)
