"""The stored article document: its fields, fingerprints and band keys, in one place.

The dedupe and store stages share this module instead of reaching into each other:

- ``fingerprint(item)`` sets the three fingerprint fields of an ``ArticleItem``:
  ``content_hash`` (SHA-256 of title, lead and body: an edit changes it), ``minhash`` (the
  64-bin MinHash of the body, ``pipelines.minhash``) and ``minhash_bands`` (its 10 LSH band
  keys, indexed in MongoDB so that near-duplicate candidates are one ``$in`` query). Dedupe
  calls it for every article; the store calls it only for an item that skipped dedupe.
  ``fingerprint_as_stored`` does the same for a page re-extracted by ``scrapy reparse``, which
  knows the stored version's fingerprints, and says whether they came out the same.
- ``article_doc(item)`` is the document the store writes (``_id`` = article id, every item
  field), without the store's own bookkeeping (``revision``, ``first_seen_at``,
  ``last_seen_at``), which the store adds as it writes.
- ``page_for(item, doc)`` is the raw page the item was extracted from, as stored in ``pages``
  (``crawler.archive``), or None (the archive is off); its ``revision`` is the store's to set.
- ``failure_doc(item)`` is a ``PageFailure``'s fields as stored in ``failures``.
- ``CANDIDATE_FIELDS`` is what dedupe reads of a stored candidate; ``REVISION_DROPPED`` what a
  revision does not keep (its bands: an old version is never a candidate).

Who writes what: the store owns each article's document (insert, edit with a revision, or
only ``last_seen_at``); dedupe owns ``duplicate_of``: it sets the field on the item before the
store writes it, and re-points stored documents when an earlier original turns up.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import Any

from itemadapter import ItemAdapter

from crawler.archive import page_doc
from crawler.items import FetchedPage, StoredVersion
from crawler.mongo import Document
from pipelines.minhash import bands, content_hash, signature

CANDIDATE_FIELDS = ("minhash", "minhash_bands", "published_at", "duplicate_of", "content_hash")
"""The fields of a stored article that dedupe matches against."""

REVISION_DROPPED = ("_id", "minhash_bands", "revision")
"""Fields of an article a revision does not copy (it gets ``article_id`` and its own number)."""

ARTICLE_INDEXES = ("published_at", "section", "tags", "minhash_bands", "duplicate_of")


def plain_fields(item: Any, drop: tuple[str, ...] = ()) -> Document:
    """The item's fields but ``drop`` as a plain dict, lists and dicts copied all the way down:
    what ``ItemAdapter(item).asdict()`` gives, read straight off a dataclass item (that call
    asks every nested value whether it is an item: 0.44 ms an article, 0.01 ms here)."""
    if not dataclasses.is_dataclass(item) or isinstance(item, type):
        data = ItemAdapter(item).asdict()
        for name in drop:
            data.pop(name, None)
        return data
    names = _field_names(type(item))
    return {name: _plain(getattr(item, name)) for name in names if name not in drop}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


_ATOMS = frozenset({int, str, float, bool, type(None), datetime})
"""Types ``_plain`` returns as they are without asking more (a signature is 64 ints)."""


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list:
        return [v if type(v) in _ATOMS else _plain(v) for v in value]
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    return value


def fingerprint(item: Any) -> ItemAdapter:
    """Set ``content_hash``, ``minhash`` and ``minhash_bands`` from the item's current text."""
    adapter = ItemAdapter(item)
    adapter["content_hash"] = _content_hash(adapter)
    _sign(adapter)
    return adapter


def fingerprint_as_stored(item: Any, stored: StoredVersion, extractor: str) -> bool:
    """Set the fingerprints as ``fingerprint`` does, for an item re-extracted from an archived
    page whose version ``articles`` holds as ``stored``; whether all three come out as stored.

    The signature is taken from ``stored`` instead of computed again only when it cannot
    differ: the same text (``content_hash``, which covers the body) and the same code
    (``extractor`` is the version of this code: ``crawler.version`` covers this package)."""
    adapter = ItemAdapter(item)
    digest = adapter["content_hash"] = _content_hash(adapter)
    same_text = digest == stored.content_hash
    signed = stored.minhash is not None and stored.minhash_bands is not None
    if same_text and signed and stored.extractor == extractor:
        adapter["minhash"] = list(stored.minhash or ())
        adapter["minhash_bands"] = list(stored.minhash_bands or ())
        return True
    _sign(adapter)
    return (
        same_text
        and signed
        and tuple(adapter["minhash"]) == stored.minhash
        and tuple(adapter["minhash_bands"]) == stored.minhash_bands
    )


def _content_hash(adapter: ItemAdapter) -> str:
    return content_hash(adapter.get("title") or "", adapter.get("lead"), adapter.get("body") or "")


def _sign(adapter: ItemAdapter) -> None:
    adapter["minhash"] = signature(adapter.get("body") or "")
    adapter["minhash_bands"] = bands(adapter["minhash"])


def article_doc(item: Any) -> Document:
    """The stored fields of an article item (without the store's own bookkeeping)."""
    adapter = ItemAdapter(item)
    if not adapter.get("content_hash") or adapter.get("minhash") is None:
        fingerprint(item)  # it skipped dedupe
    elif adapter.get("minhash_bands") is None:
        adapter["minhash_bands"] = bands(adapter["minhash"])
    # The raw page goes to ``pages`` (page_for), never in here.
    data = plain_fields(item, drop=("fetched", "failed_before", "stored_as_is"))
    doc: Document = {"_id": data.pop("id")}
    doc.update(data)
    return doc


def page_for(item: Any, doc: Document) -> Document | None:
    """The ``pages`` document of the response ``item`` came from (revision 0: the store sets
    the revision it writes), or None when the item carries no response."""
    fetched = ItemAdapter(item).get("fetched")
    if not isinstance(fetched, FetchedPage):
        return None
    return page_doc(fetched, doc["_id"], 0, doc["content_hash"])


def failure_doc(item: Any) -> Document:
    """A ``PageFailure`` as stored in ``failures`` (its times are the store's)."""
    data = plain_fields(item)
    return {
        "url": data["url"],
        "reason": data.get("reason") or "unknown",
        "detail": data.get("detail") or "",
        "status": data.get("status"),
        "attempts": max(1, int(data.get("attempts") or 1)),
        "article_id": data.get("article_id"),
        "retry_at": data.get("retry_at"),
        "retry_request": data.get("retry_request") or "",
    }
