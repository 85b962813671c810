"""The listing API (``POST /userApi/categoryNewsList``, spec §4): its JSON → entries + cursor.

``ListingPage`` parses a response; ``listing_request_body`` builds the JSON request body and
``next_cursor`` computes the next page's ``(timestamp, excludeNewsIds)``: the same request with
``timestamp = lastTime`` and the ids already received at that second excluded. When a whole
page falls in one second, the ids of the earlier pages at that second stay excluded too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crawler.pages.errors import ExtractionError
from crawler.pages.hints import api_hint
from crawler.text import clean_text, from_unix
from crawler.urls import SiteUrls

DEFAULT_IMAGE_SIZE = 434


@dataclass(frozen=True, slots=True)
class ListingEntry:
    """One item of ``newsList``."""

    id: int
    url: str
    """Canonical URL from ``link`` (the article's primary path)."""
    date: datetime
    """Publication time, aware, UTC."""
    title: str
    lead: str | None = None
    """``lead`` as given (``""``: the article has none); None when the item has no string."""
    mark: str | None = None
    """``mark`` as given (``""``: none); None when the item has no string."""
    image: str | None = None
    """``image``: a small copy of the lead photo, or None (most items)."""

    def hint(self) -> dict[str, Any]:
        """What this item says of its article (``crawler.pages.hints``)."""
        return api_hint(
            title=self.title, lead=self.lead, mark=self.mark, date=self.date, image=self.image
        )


def listing_request_body(
    section_id: int,
    limit: int,
    timestamp: int | None = None,
    exclude: Iterable[int] = (),
) -> dict[str, Any]:
    """The JSON body the site sends; ``timestamp`` omitted for the newest page."""
    body: dict[str, Any] = {
        "sectionId": int(section_id),
        "limit": int(limit),
        "type": "all",
        "excludeNewsIds": ",".join(str(int(i)) for i in exclude),
        "imageSize": DEFAULT_IMAGE_SIZE,
    }
    if timestamp is not None:
        body["timestamp"] = int(timestamp)
    return body


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


class ListingPage:
    """A parsed ``categoryNewsList`` response; raises ``ExtractionError`` when malformed."""

    def __init__(self, url: str, body: bytes | str, urls: SiteUrls) -> None:
        self.url = url
        self.urls = urls
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ExtractionError("bad_json", f"listing response is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("newsList"), list):
            raise ExtractionError("bad_json", "listing response has no newsList array")
        self.entries: list[ListingEntry] = []
        self.skipped = 0
        """Items without a usable id, date or in-scope link."""
        for raw in data["newsList"]:
            entry = self._entry(raw)
            if entry is None:
                self.skipped += 1
            else:
                self.entries.append(entry)
        self.last_time: int | None = _int(data.get("lastTime"))

    def _entry(self, raw: object) -> ListingEntry | None:
        if not isinstance(raw, dict):
            return None
        article_id = _int(raw.get("id"))
        link = raw.get("link")
        date = from_unix(raw.get("date"))
        if article_id is None or not isinstance(link, str) or date is None:
            return None
        url = self.urls.canonical(link)
        if url is None or self.urls.article_id(url) is None:
            return None
        title, lead, mark, image = (raw.get(k) for k in ("title", "lead", "mark", "image"))
        return ListingEntry(
            id=article_id,
            url=url,
            date=date,
            title=clean_text(title) if isinstance(title, str) else "",
            lead=clean_text(lead) if isinstance(lead, str) else None,
            mark=clean_text(mark) if isinstance(mark, str) else None,
            image=image.strip() or None if isinstance(image, str) else None,
        )


def next_cursor(
    entries: Sequence[ListingEntry],
    last_time: int | None,
    previous_exclude: Sequence[int] = (),
) -> tuple[int, list[int]] | None:
    """``(timestamp, exclude_ids)`` for the next page, or None when the list has ended.

    ``timestamp`` is ``lastTime`` (else the oldest entry's second); ``exclude_ids`` are the
    ids received at that second, plus ``previous_exclude`` when the whole page fell in that
    second (the previous ids may be at the same second). None for an empty page, or when the
    page brought nothing new (a server ignoring ``excludeNewsIds`` must not loop forever).
    """
    if not entries:
        return None
    if all(e.id in set(previous_exclude) for e in entries):
        return None
    timestamp = last_time
    if timestamp is None:
        timestamp = int(min(e.date for e in entries).timestamp())
    at_second = [e.id for e in entries if int(e.date.timestamp()) == timestamp]
    exclude: list[int] = []
    if all(int(e.date.timestamp()) == timestamp for e in entries):
        exclude.extend(previous_exclude)
    for article_id in at_second:
        if article_id not in exclude:
            exclude.append(article_id)
    return timestamp, exclude
