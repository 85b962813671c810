"""Small helpers the stages share: which kind an item is, the current time, and whether
every response in flight waits in one of the stages' batches (``nothing_else_coming``)."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from crawler import internals
from crawler.items import ArticleItem, PageFailure

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


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


class Waiting(Protocol):
    """A batch of pipeline work: how many items wait for it to go."""

    @property
    def waiting(self) -> int: ...


_PARKED: weakref.WeakKeyDictionary[Crawler, list[Waiting]] = weakref.WeakKeyDictionary()


def park(crawler: Crawler, batches: Waiting) -> None:
    """Count ``batches``'s waiting items in ``nothing_else_coming`` (the store, dedupe)."""
    _PARKED.setdefault(crawler, []).append(batches)


def nothing_else_coming(crawler: Crawler) -> bool:
    """Whether everything in flight waits in a batch of the stages: no item can join a waiting
    batch before one of them goes, so waiting longer gains nothing. Each response the scraper
    holds brings at most one article or failure, and a request still downloading brings none
    before its response, except the record of its pending retry (or of a retry that answered)
    that the retry middleware waits on (``crawler.frontier.retry``): so the count of requests
    downloading and responses held is at most what waits in the batches."""
    flight = internals.in_flight(crawler)
    if flight is None:
        return False
    downloading, held = flight
    return downloading + held <= sum(b.waiting for b in _PARKED.get(crawler, ()))
