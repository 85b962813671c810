"""Signals the stages send (Scrapy signals: any component may connect to them).

``article_stored``: sent by the store (``pipelines.store``) once a batch is written, before
its items are acknowledged, with ``articles``: a list of ``StoredArticle``, each a new article
or a new revision (not an unchanged re-fetch). Handlers may be coroutines; the store awaits
them, so what a handler does for an article (the items feed, ``pipelines.feed``) is done
before the request that brought it is acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crawler.mongo import Document

article_stored = object()


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """A version the store has just written: ``new`` (revision 1) or ``revised``."""

    event: Literal["new", "revised"]
    doc: Document
    """The stored document: the article's fields, ``revision``, ``extractor``, the times."""
