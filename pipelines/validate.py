"""The validate stage: an article must be whole and sane, or it becomes a recorded failure.

Checks, in order (the first failing field names the failure):

- ``id``: an int > 0;
- ``url``: an absolute http(s) URL whose path is ``/<segment>/<id>``;
- ``section``: non-empty;
- ``kind``: one of ``ARTICLE_KINDS``;
- ``title``: non-empty and at most ``MAX_TITLE_LENGTH`` characters;
- what the article's kind is made of: a ``gallery`` is its slides, so it needs at least one
  image with a caption or a credit (``images``) and its intro is optional (any ``body``, even
  none); every other kind needs a ``body`` of at least ``TASS_VALIDATE_MIN_BODY`` characters;
- ``published_at``: present, timezone-aware, not before 1990 and not more than a day ahead.

``modified_at`` is optional and repaired rather than rejected: a naive or out-of-range value is
dropped (None), and one earlier than ``published_at`` (press reviews get their id and JSON-LD
stamps before they publish) is raised to ``published_at``; stats ``tass/validate/fixed/...``.

An invalid article is not dropped silently: it is replaced by a
``PageFailure(url, reason="invalid:<field>", detail=<every problem>)`` that continues to the
store stage and lands in ``failures``. ``PageFailure`` and other items pass untouched.
Stats: ``tass/validate/valid``, ``tass/validate/invalid`` and ``tass/validate/invalid/<field>``
for every failing field.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from crawler import defaults
from crawler.items import ARTICLE_KINDS, PageFailure
from pipelines.common import is_article

logger = logging.getLogger(__name__)

_ARTICLE_PATH = re.compile(r"^/[a-z0-9][a-z0-9-]*/(\d+)$")


@dataclass(frozen=True, slots=True)
class ValidateConfig:
    """The limits an article must meet."""

    min_body: int = defaults.TASS_VALIDATE_MIN_BODY
    max_title: int = defaults.MAX_TITLE_LENGTH

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        min_body = settings.getint("TASS_VALIDATE_MIN_BODY", defaults.TASS_VALIDATE_MIN_BODY)
        if min_body < 0:
            raise ValueError(f"TASS_VALIDATE_MIN_BODY must be >= 0 characters, got {min_body}")
        return cls(min_body=min_body)


def _check_moment(value: Any, now: datetime) -> str | None:
    if not isinstance(value, datetime):
        return "missing" if value is None else f"not a datetime: {value!r}"
    if value.tzinfo is None or value.utcoffset() is None:
        return f"naive datetime {value.isoformat()}"
    if value < defaults.EARLIEST_PUBLISHED:
        return f"{value.isoformat()} is before {defaults.EARLIEST_PUBLISHED.date()}"
    if value > now + defaults.MAX_FUTURE_SKEW:
        return f"{value.isoformat()} is in the future"
    return None


def problems(adapter: ItemAdapter, config: ValidateConfig, now: datetime) -> dict[str, str]:
    """Every failing field of an article with what is wrong, in check order (empty: valid)."""
    found: dict[str, str] = {}
    aid = adapter.get("id")
    if not isinstance(aid, int) or isinstance(aid, bool) or aid <= 0:
        found["id"] = f"id must be a positive int, got {aid!r}"
    url = adapter.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    match = _ARTICLE_PATH.match(parts.path) if parts else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or not match:
        found["url"] = f"url must be http(s)://host/<section>/<id>, got {url!r}"
    elif "id" not in found and int(match.group(1)) != aid:
        found["url"] = f"url {url!r} does not end with /{aid}"
    if not adapter.get("section"):
        found["section"] = "section is empty"
    kind = adapter.get("kind")
    if kind not in ARTICLE_KINDS:
        found["kind"] = f"kind {kind!r} is not one of {', '.join(ARTICLE_KINDS)}"
    title = adapter.get("title")
    if not isinstance(title, str) or not title.strip():
        found["title"] = "title is empty"
    elif len(title) > config.max_title:
        found["title"] = f"title is {len(title)} characters (max {config.max_title})"
    body = adapter.get("body")
    body_len = len(body) if isinstance(body, str) else 0
    if kind == "gallery":
        slides = [i for i in adapter.get("images") or [] if i.get("caption") or i.get("credit")]
        if not slides:
            found["images"] = "a gallery needs at least one photo with a caption or a credit"
    elif body_len < config.min_body:
        found["body"] = f"body is {body_len} characters (min {config.min_body})"
    problem = _check_moment(adapter.get("published_at"), now)
    if problem:
        found["published_at"] = f"published_at {problem}"
    return found


class ValidatePipeline:
    """Passes sane articles on and turns insane ones into ``PageFailure`` items."""

    def __init__(self, stats: StatsCollector, config: ValidateConfig) -> None:
        self.stats = stats
        self.config = config

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(crawler.stats, ValidateConfig.from_settings(crawler.settings))

    def process_item(self, item: Any) -> Any:
        if not is_article(item):
            return item
        adapter = ItemAdapter(item)
        now = datetime.now(UTC)
        found = problems(adapter, self.config, now)
        if not found:
            self._fix_modified(adapter, now)
            self.stats.inc_value("tass/validate/valid")
            return item
        self.stats.inc_value("tass/validate/invalid")
        for name in found:
            self.stats.inc_value(f"tass/validate/invalid/{name}")
        first = next(iter(found))
        url = adapter.get("url")
        aid = adapter.get("id")
        logger.info("Invalid article %s: %s", url, "; ".join(found.values()))
        return PageFailure(
            url=str(url or f"tass-article:{aid}"),
            reason=f"invalid:{first}",
            detail="; ".join(found.values()),
            article_id=aid if isinstance(aid, int) and aid > 0 else None,
        )

    def _fix_modified(self, adapter: ItemAdapter, now: datetime) -> None:
        modified = adapter.get("modified_at")
        if modified is None:
            return
        if _check_moment(modified, now) is not None:
            adapter["modified_at"] = None
            self.stats.inc_value("tass/validate/fixed/modified_at_dropped")
            return
        published = adapter["published_at"]
        if modified < published:
            adapter["modified_at"] = published
            self.stats.inc_value("tass/validate/fixed/modified_at_raised")
