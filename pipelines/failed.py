"""Which URLs and article ids may have a ``failures`` document, as far as one store knows.

A stored article removes any ``failures`` document of its URL or id (it recovered): one delete
command a batch, a third of the store's writes, although almost every article never failed.
The store asks this first and sends the command only for the articles that may have one:

- those whose URL or id has a document in ``failures`` when the store last read it: at its
  first batch, and again at the first batch after the worker enters a run (signal
  ``crawler.frontier.signals.run_entered``: a standing worker enters many);
- those whose failure or pending retry this store has written since;
- and those whose item says its request failed before (``ArticleItem.failed_before``): a retry,
  a replayed dead letter, a fed URL. That is how a failure another worker records during the
  run is known here: a URL fails at most once a run before it is queued again, and it is
  queued again only as one of those (a retry carries its count; a dead letter, kept only
  after its failure is recorded, is replayed with ``codec.FAILED_META``; fed URLs are
  anyone's).

Until the first read succeeds, every article may have one. Knowing a URL that no longer has a
document costs one needless delete, never a wrong one.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from crawler.mongo import Document


class KnownFailures:
    """The URLs and ids with a ``failures`` document this store knows of (module docstring).

    Used from the store's writer thread only (one batch at a time); ``expire`` may be called
    from the event loop (a flag)."""

    def __init__(self) -> None:
        self.urls: set[str] = set()
        self.ids: set[int] = set()
        self.loaded = False
        self.stale = True
        """Read ``failures`` again before the next batch."""

    def expire(self) -> None:
        """The worker entered a run: read the collection again before the next batch."""
        self.stale = True

    def refresh(self, failures: Collection[Document]) -> None:
        """Read every document's URL and id, if ``stale`` (one query); raises as pymongo does
        (the batch is then retried, and this with it)."""
        if not self.stale:
            return
        urls: set[str] = set()
        ids: set[int] = set()
        for doc in failures.find({}, {"_id": 0, "url": 1, "article_id": 1}):
            urls.add(doc["url"])
            if doc.get("article_id") is not None:
                ids.add(doc["article_id"])
        self.urls, self.ids = urls, ids
        self.loaded, self.stale = True, False

    def add(self, url: str, article_id: Any) -> None:
        """This store is writing a failure (or a pending retry) of ``url``."""
        self.urls.add(url)
        if article_id is not None:
            self.ids.add(article_id)

    def may_have(self, url: str, article_id: Any, failed_before: bool) -> bool:
        """Whether a stored article of ``url`` and ``article_id`` must remove failures
        documents (``failed_before``: its item's ``failed_before``)."""
        return failed_before or not self.loaded or url in self.urls or article_id in self.ids
