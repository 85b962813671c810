"""The article page object against the replica's ground truth, over real HTTP.

Starts the replica (a small corpus, port 0), fetches a sample of about 150 articles of every
kind and markup variant (plus the windows-1251 and invalid-bytes articles and the hostile
pages that must fail) and compares ``ArticlePage`` field by field with the truth. One test per
field, so a failure names the field and lists the first articles that differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from crawler.pages import ArticlePage, ExtractionError
from crawler.urls import SiteUrls
from replica.launch import ReplicaProcess
from tests.pages.save_case import ARTICLE_FIELDS, fetch, truth_expected

SAMPLE = 150


@pytest.fixture(scope="module")
def replica() -> Iterator[tuple[str, dict[str, Any]]]:
    with ReplicaProcess(articles=300, seed=11) as process:
        yield process.base_url, process.truth()


def _sample(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-news article, the hostile-but-valid ones, then news up to ``SAMPLE``."""
    special = {h["path"] for h in truth["hostile"] if h["expect"] == "article"}
    articles = truth["articles"]
    chosen = [a for a in articles if a["kind"] != "news" or a["path"] in special]
    for a in articles:
        if len(chosen) >= SAMPLE:
            break
        if a not in chosen:
            chosen.append(a)
    return chosen


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.fixture(scope="module")
def compared(replica: tuple[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Field → descriptions of the sampled articles where the page object differs."""
    base, truth = replica
    urls = SiteUrls(base)
    diffs: dict[str, list[str]] = {field: [] for field in (*ARTICLE_FIELDS, "extraction", "links")}
    sample = _sample(truth)
    assert len(sample) >= min(SAMPLE, len(truth["articles"]))
    for article in sample:
        body, charset, final = fetch(article["url"])
        page = ArticlePage(final, body, urls, encoding=charset)
        try:
            item = page.to_item().to_dict()
        except ExtractionError as exc:
            diffs["extraction"].append(f"{article['url']}: {exc}")
            continue
        expected = truth_expected(article)
        for field in ARTICLE_FIELDS:
            if _plain(item[field]) != expected[field]:
                diffs[field].append(
                    f"{article['url']} ({article['kind']}): got {_plain(item[field])!r}, "
                    f"expected {expected[field]!r}"
                )
        links = set(page.links())
        missing = [r["url"] for r in expected["related"] if r["url"] not in links]
        if missing:
            diffs["links"].append(f"{article['url']}: related not followed: {missing}")
    return diffs


@pytest.mark.parametrize("field", [*ARTICLE_FIELDS, "extraction", "links"])
def test_field_matches_truth(compared: dict[str, list[str]], field: str) -> None:
    diffs = compared[field]
    assert not diffs, f"{len(diffs)} differ:\n" + "\n".join(diffs[:5])


def test_sample_covers_every_kind(replica: tuple[str, dict[str, Any]]) -> None:
    kinds = {a["kind"] for a in _sample(replica[1])}
    assert kinds == {"news", "article", "interview", "opinion", "gallery"}


@pytest.mark.parametrize("kind", ["truncated", "empty_body"])
def test_hostile_pages_fail(replica: tuple[str, dict[str, Any]], kind: str) -> None:
    base, truth = replica
    entry = next(h for h in truth["hostile"] if h["kind"] == kind)
    body, charset, final = fetch(entry["url"])
    with pytest.raises(ExtractionError) as info:
        ArticlePage(final, body, SiteUrls(base), encoding=charset).to_item()
    assert info.value.reason == kind
