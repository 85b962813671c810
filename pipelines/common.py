"""Small helpers the stages share: which kind an item is, the current time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crawler.items import ArticleItem, PageFailure


def is_failure(item: Any) -> bool:
    """True for a ``PageFailure``: it flows through every stage untouched until store."""
    return isinstance(item, PageFailure)


def is_article(item: Any) -> bool:
    """True for an ``ArticleItem``; the stages leave any other item type alone."""
    return isinstance(item, ArticleItem)


def utcnow() -> datetime:
    """The current time, aware, in UTC, at BSON's millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
