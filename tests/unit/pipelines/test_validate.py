"""The validate stage passes sane articles and turns the others into recorded failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.items import ArticleItem, PageFailure
from pipelines.validate import ValidatePipeline

from .helpers import article, make_crawler


def _validate(item, **settings):
    crawler = make_crawler(**settings)
    return ValidatePipeline.from_crawler(crawler).process_item(item), crawler.stats


def test_valid_article_passes() -> None:
    item = article(2150013)
    result, stats = _validate(item)
    assert result is item
    assert stats.get_value("tass/validate/valid") == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": 0}, "id"),
        ({"url": "https://tass.com/politics/2150015"}, "url"),
        ({"url": "ftp://tass.com/politics/2150013"}, "url"),
        ({"url": "https://tass.com/2150013"}, "url"),
        ({"section": ""}, "section"),
        ({"kind": "blog"}, "kind"),
        ({"title": ""}, "title"),
        ({"title": "x" * 401}, "title"),
        ({"body": "Too short."}, "body"),
        ({"published_at": None}, "published_at"),
        ({"published_at": datetime(2026, 10, 7, 9, 0)}, "published_at"),
        ({"published_at": datetime(1989, 12, 31, tzinfo=UTC)}, "published_at"),
        ({"published_at": datetime.now(UTC) + timedelta(days=3)}, "published_at"),
    ],
)
def test_invalid_article_becomes_a_failure(overrides, field) -> None:
    item = article(2150013, **overrides)
    result, stats = _validate(item)
    assert isinstance(result, PageFailure)
    assert result.reason == f"invalid:{field}"
    assert result.url == item.url
    assert field in result.detail
    assert stats.get_value(f"tass/validate/invalid/{field}") == 1
    assert stats.get_value("tass/validate/invalid") == 1


def test_every_problem_is_named_in_the_detail() -> None:
    result, stats = _validate(article(2150013, title="", body="", kind="blog"))
    assert result.reason == "invalid:kind"
    assert "title" in result.detail and "body" in result.detail
    assert result.article_id == 2150013
    assert stats.get_value("tass/validate/invalid/body") == 1


def test_min_body_setting_and_gallery_exception() -> None:
    short = article(2150013, body="A short but real body of text.")
    assert _validate(short, TASS_VALIDATE_MIN_BODY=10)[0] is short
    gallery = article(
        2150013,
        kind="gallery",
        body="",
        images=[{"url": "https://cdn-media.tass.ru/1.jpg", "caption": "c", "credit": None}],
    )
    assert isinstance(_validate(gallery)[0], ArticleItem)
    with pytest.raises(ValueError, match="TASS_VALIDATE_MIN_BODY"):
        _validate(short, TASS_VALIDATE_MIN_BODY=-1)


def test_validation_follows_the_kind() -> None:
    """A gallery is its slides (a body is optional, however short); a news item needs text."""
    slide = {"url": "https://cdn-media.tass.ru/1.jpg", "caption": None, "credit": "© TASS"}
    with_intro = article(2150013, kind="gallery", body="Short intro.", images=[slide])
    assert isinstance(_validate(with_intro)[0], ArticleItem)
    bare = {"url": "https://cdn-media.tass.ru/2.jpg", "caption": None, "credit": None}
    result, stats = _validate(article(2150013, kind="gallery", body="", images=[bare]))
    assert isinstance(result, PageFailure) and result.reason == "invalid:images"
    assert stats.get_value("tass/validate/invalid/images") == 1
    result, _ = _validate(article(2150013, kind="gallery", body="", images=[]))
    assert isinstance(result, PageFailure) and result.reason == "invalid:images"
    news = article(2150013, kind="news", body="", images=[slide])
    result, _ = _validate(news)
    assert isinstance(result, PageFailure) and result.reason == "invalid:body"


def test_modified_at_repaired_not_rejected() -> None:
    published = datetime(2026, 10, 7, 9, 0, tzinfo=UTC)
    early = article(2150013, published_at=published, modified_at=published - timedelta(hours=2))
    result, stats = _validate(early)
    assert result.modified_at == published
    assert stats.get_value("tass/validate/fixed/modified_at_raised") == 1
    naive = article(2150013, published_at=published, modified_at=datetime(2026, 10, 7, 10, 0))
    result, stats = _validate(naive)
    assert result.modified_at is None
    assert stats.get_value("tass/validate/fixed/modified_at_dropped") == 1


def test_failures_pass_untouched() -> None:
    failure = PageFailure(url="https://tass.com/x", reason="http_status")
    assert _validate(failure)[0] is failure
