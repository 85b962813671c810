"""Feed hints: what a listing API item or an RSS item said about an article, kept by its id.

Both feeds are independent of the article page's markup (spec §4, §6), so they are a second
source for the fields they carry. A hint is a small JSON object keyed by its source:

    {"a": {"t": title, "l": lead, "m": mark, "d": unix seconds, "i": image URL},
     "r": {"t": title, "l": description, "c": category, "d": unix seconds}}

``a`` is the listing API, ``r`` the RSS feed. A key is absent when the feed did not say; an empty
string is the feed saying "none" (the API's ``"mark": ""``, an empty RSS description). Texts are
cleaned and capped (``MAX_HINT_TEXT``), so a hostile feed cannot make a hint large.

The spider puts a hint on each article request it makes from a feed (``HINTS_META``); the
frontier keeps it in Redis by article id whatever becomes of the request (queued, or dropped as
already known), merging the sources, and hands the merged hint back with the article's lease
(``crawler.frontier.lua``). ``FeedHints`` reads it back and answers for the fields.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lxml.html

from crawler.items import Image
from crawler.pages.signals import Answer
from crawler.pages.tree import visible_text
from crawler.text import SECTION_NAMES, clean_text, from_unix

MAX_HINT_TEXT = 1000
"""Characters kept of one text of a hint."""
API = "a"
RSS = "r"
_SOURCES = {API: "api", RSS: "rss"}
_MARKUP_RE = re.compile(r"<[a-zA-Z/!]")


def _text(value: object) -> str | None:
    """A hint text: cleaned, capped; None when the feed gave no string."""
    if not isinstance(value, str):
        return None
    if _MARKUP_RE.search(value):
        # An RSS description may carry HTML inside its CDATA: keep its visible text.
        with contextlib.suppress(ValueError, lxml.etree.ParserError):
            value = visible_text(lxml.html.fragment_fromstring(value, create_parent="div"))
    return clean_text(value)[:MAX_HINT_TEXT]


def _unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _compact(fields: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in fields.items() if v is not None}


def api_hint(
    *,
    title: object,
    lead: object,
    mark: object,
    date: datetime | None,
    image: object,
) -> dict[str, Any]:
    """The hint of a listing API item (``newsList[i]``)."""
    image_url = _text(image) or None
    return {
        API: _compact(
            {
                "t": _text(title),
                "l": _text(lead),
                "m": _text(mark),
                "d": _unix(date),
                "i": image_url,
            }
        )
    }


def rss_hint(
    *, title: object, description: object, category: object, date: datetime | None
) -> dict[str, Any]:
    """The hint of an RSS item."""
    return {
        RSS: _compact(
            {
                "t": _text(title),
                "l": _text(description),
                "c": _text(category),
                "d": _unix(date),
            }
        )
    }


def encode_hint(hint: dict[str, Any]) -> bytes:
    return json.dumps(hint, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class FeedHints:
    """The merged hint of one article, by source (``{"a": {...}, "r": {...}}``)."""

    by_source: dict[str, dict[str, Any]]

    @classmethod
    def none(cls) -> FeedHints:
        return cls({})

    @classmethod
    def from_value(cls, value: object) -> FeedHints:
        """From a request's ``HINTS_META`` value (a dict, or its JSON); junk gives no hints."""
        if isinstance(value, bytes | str):
            try:
                value = json.loads(value)
            except ValueError:
                return cls.none()
        if not isinstance(value, dict):
            return cls.none()
        return cls(
            {str(k): v for k, v in value.items() if str(k) in _SOURCES and isinstance(v, dict)}
        )

    def __bool__(self) -> bool:
        return bool(self.by_source)

    def feeds(self) -> list[str]:
        """The signals of the feeds that gave a hint (``api``, ``rss``)."""
        return [signal for signal, _hint in self._each()]

    def _each(self) -> list[tuple[str, dict[str, Any]]]:
        return [(_SOURCES[k], self.by_source[k]) for k in (API, RSS) if k in self.by_source]

    def title(self) -> list[Answer]:
        return [Answer(s, t) for s, h in self._each() if (t := _text(h.get("t")))]

    def lead(self) -> list[Answer]:
        """The API lead and the RSS description; an empty one says the article has none."""
        out = []
        for signal, hint in self._each():
            text = _text(hint.get("l"))
            if text is not None:
                out.append(Answer(signal, text or None))
        return out

    def mark(self) -> list[Answer]:
        """The API's mark (empty: none); the RSS category when it is not a section's name."""
        out = []
        api = self.by_source.get(API, {})
        mark = _text(api.get("m"))
        if mark is not None:
            out.append(Answer("api", mark or None))
        category = _text(self.by_source.get(RSS, {}).get("c"))
        if category and category.casefold() not in SECTION_NAMES:
            out.append(Answer("rss", category))
        return out

    def published_at(self) -> list[Answer]:
        return [Answer(s, d) for s, h in self._each() if (d := from_unix(h.get("d"))) is not None]

    def images(self) -> list[Answer]:
        url = _text(self.by_source.get(API, {}).get("i"))
        if not url:
            return []
        absolute = "https:" + url if url.startswith("//") else url
        return [Answer("api", [Image(url=absolute, caption=None, credit=None)])]
