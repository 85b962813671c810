"""The clean stage: normalise an article's text, dates and lists before it is checked.

For ``ArticleItem`` items (anything else passes untouched):

- every text goes through the site-text rule (``crawler.text.clean_text``: NUL and the other
  control characters, lone surrogates and U+FFFD dropped, NFC, whitespace runs collapsed to one
  space, trimmed);
- ``body`` loses its control characters first (``crawler.text.strip_controls``, so a NUL
  cannot hide a blank line), is split on blank lines, each paragraph collapsed, and page
  furniture that slipped through the page object dropped: raw Angular templates (``{{…}}``),
  ``Реклама`` ad labels, a leftover "Read also" line, bare photo credits (``© …``) and inline
  scripts; the paragraphs are joined again with ``"\\n\\n"``;
- ``title`` loses a trailing `` - TASS`` (``crawler.text.strip_title_suffix``, the page objects'
  rule: a spaced dash, so "ITAR-TASS" stays); an empty ``lead``,
  ``dateline`` or ``mark`` becomes None;
- ``tags`` are trimmed and de-duplicated (case-insensitively), keeping the first spelling and
  the page order;
- ``published_at`` and ``modified_at`` become aware UTC datetimes. A naive datetime is read as
  site time (``crawler.text.site_time``: Moscow, UTC+03:00 all year); an ISO 8601
  string or unix seconds are accepted too. A value that cannot be read becomes None (validate
  then rejects a missing ``published_at``);
- ``images`` keep entries with a URL (protocol-relative ``//…`` made https), captions and
  credits cleaned, duplicates by URL dropped; ``related`` keeps entries with a positive int id and
  a URL, not pointing at the article itself, de-duplicated by id.

Stats: ``tass/clean/items``, ``tass/clean/dropped_paragraphs``, ``tass/clean/title_suffix``,
``tass/clean/naive_datetime``, ``tass/clean/bad_datetime``, ``tass/clean/duplicate_tags``,
``tass/clean/dropped_images``, ``tass/clean/dropped_related``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Self

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from crawler.text import clean_text, site_time, strip_controls, strip_title_suffix
from pipelines.common import is_article

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_READ_ALSO = re.compile(r"^read\s+(also|more)\b", re.IGNORECASE)
_AD_LABEL = re.compile(r"^[\W_]*реклама[\W_]*$", re.IGNORECASE)
_CREDIT = re.compile(r"^©\s*\S")
_SCRIPT = re.compile(
    r"^(<script|\(?function\s*\(|window\.|var\s+\w+\s*=|googletag\.|\(adsbygoogle|yandex_rtb|Ya\.)",
    re.IGNORECASE,
)
_MAX_CREDIT_LENGTH = 150


def clean_optional(value: Any) -> str | None:
    """Like ``clean_text`` but an empty result is None."""
    return clean_text(value) or None


def is_furniture(paragraph: str) -> bool:
    """True for a cleaned paragraph that is page furniture rather than article text."""
    return bool(
        _AD_LABEL.match(paragraph)
        or _READ_ALSO.match(paragraph)
        or _SCRIPT.match(paragraph)
        or (_CREDIT.match(paragraph) and len(paragraph) <= _MAX_CREDIT_LENGTH)
    )


def clean_body(value: Any) -> tuple[str, int]:
    """The cleaned body and the number of paragraphs dropped as empty or furniture."""
    text = strip_controls(str(value or "")).replace("\r\n", "\n").replace("\r", "\n")
    kept: list[str] = []
    dropped = 0
    for raw in _PARAGRAPH_BREAK.split(text):
        paragraph = clean_text(_TEMPLATE.sub(" ", raw))
        if not paragraph or is_furniture(paragraph):
            dropped += 1 if raw.strip() else 0
            continue
        kept.append(paragraph)
    return "\n\n".join(kept), dropped


def clean_title(value: Any) -> tuple[str, bool]:
    """The title without a trailing `` - TASS`` (the site-text rule), and whether one was
    removed."""
    return strip_title_suffix(clean_text(value))


def to_utc(value: Any) -> tuple[datetime | None, str]:
    """``(aware UTC datetime or None, note)``; note is ``""``, ``"naive"`` or ``"bad"``."""
    if value is None or value == "":
        return None, ""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC), ""
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, "bad"
    else:
        return None, "bad"
    moment, naive = site_time(moment)
    return moment, "naive" if naive else ""


def clean_tags(values: Any) -> tuple[list[str], int]:
    """Tags trimmed, empty ones dropped, repeats dropped case-insensitively; and repeats count."""
    seen: set[str] = set()
    tags: list[str] = []
    repeats = 0
    for raw in values or []:
        tag = clean_text(raw)
        if not tag:
            continue
        key = tag.casefold()
        if key in seen:
            repeats += 1
            continue
        seen.add(key)
        tags.append(tag)
    return tags, repeats


def clean_url(value: Any) -> str:
    url = clean_text(value).replace(" ", "%20")
    return f"https:{url}" if url.startswith("//") else url


def clean_images(values: Any) -> tuple[list[dict[str, Any]], int]:
    images: list[dict[str, Any]] = []
    seen: set[str] = set()
    dropped = 0
    for raw in values or []:
        data = dict(raw) if isinstance(raw, dict) else {}
        url = clean_url(data.get("url"))
        if not url or url in seen:
            dropped += 1
            continue
        seen.add(url)
        images.append(
            {
                "url": url,
                "caption": clean_optional(data.get("caption")),
                "credit": clean_optional(data.get("credit")),
            }
        )
    return images, dropped


def clean_related(values: Any, own_id: Any) -> tuple[list[dict[str, Any]], int]:
    related: list[dict[str, Any]] = []
    seen: set[int] = set()
    dropped = 0
    for raw in values or []:
        data = dict(raw) if isinstance(raw, dict) else {}
        try:
            rid = int(data.get("id") or 0)
        except (TypeError, ValueError):
            rid = 0
        url = clean_url(data.get("url"))
        if rid <= 0 or not url or rid in seen or rid == own_id:
            dropped += 1
            continue
        seen.add(rid)
        related.append({"id": rid, "url": url, "title": clean_text(data.get("title"))})
    return related, dropped


class CleanPipeline:
    """Normalises ``ArticleItem`` fields in place; other items pass untouched."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def _count(self, key: str, count: int = 1) -> None:
        if count:
            self.stats.inc_value(f"tass/clean/{key}", count)

    def process_item(self, item: Any) -> Any:
        if not is_article(item):
            return item
        adapter = ItemAdapter(item)
        self._count("items")

        if isinstance(adapter.get("id"), str) and adapter["id"].strip().isdigit():
            adapter["id"] = int(adapter["id"])
        adapter["url"] = clean_text(adapter.get("url"))
        adapter["section"] = clean_text(adapter.get("section")).lower()
        adapter["kind"] = clean_text(adapter.get("kind")).lower()
        title, stripped = clean_title(adapter.get("title"))
        adapter["title"] = title
        self._count("title_suffix", int(stripped))
        adapter["lead"] = clean_optional(adapter.get("lead"))
        body, dropped = clean_body(adapter.get("body"))
        adapter["body"] = body
        self._count("dropped_paragraphs", dropped)
        adapter["dateline"] = clean_optional(adapter.get("dateline"))
        adapter["mark"] = clean_optional(adapter.get("mark"))

        for name in ("published_at", "modified_at"):
            moment, note = to_utc(adapter.get(name))
            adapter[name] = moment
            if note:
                self._count(f"{note}_datetime")

        tags, repeats = clean_tags(adapter.get("tags"))
        adapter["tags"] = tags
        self._count("duplicate_tags", repeats)
        images, dropped_images = clean_images(adapter.get("images"))
        adapter["images"] = images
        self._count("dropped_images", dropped_images)
        related, dropped_related = clean_related(adapter.get("related"), adapter.get("id"))
        adapter["related"] = related
        self._count("dropped_related", dropped_related)
        return item
