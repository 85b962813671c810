"""Where the dedupe stage finds its candidates: a band-indexed recent window, batched lookups.

``RecentWindow`` holds the last ``size`` articles this process saw, in arrival order, and an
index ``band key -> ids`` over their LSH bands, so the articles sharing a band with a given one
are found with ten dictionary look-ups instead of a scan of the window. Every change goes
through ``remember`` (which also replaces an id seen again, with its new bands) and eviction of
the oldest, and both keep the index equal to the window: a key maps to exactly the ids in the
window whose bands contain it, and no key maps to an empty set.

``CandidateLookup`` gathers the MongoDB candidate lookups of articles arriving close together
and sends one indexed ``$in`` query over all their band keys: a batch goes when ``batch_size``
articles wait, or ``interval`` seconds after its first one arrived, or when ``idle()`` says
nothing else can join (``crawler.batch``), or at close. The query
returns the stored documents sharing any band with any of them (with their ``minhash_bands``);
each waiter gets the documents sharing a band with it (at most ``limit``, its own document
included: the caller decides what to do with it). A waiter that says its own document is
stored with exactly its keys (``own=``) and needs nothing of it has that document left out
of the query when no other waiter's keys meet its keys: nobody in the batch would be given
it (the dedupe stage's late check, whose own documents were just stored, would otherwise read
back a whole store batch only to skip it). Several batches may be in flight at once. The
blocking call, run in a thread and retried through an outage, is the caller's ``fetch``; its
error (``RetryDeadlineExceeded`` after an outage) is raised to every waiter of the batch.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar

from crawler.batch import Batcher
from crawler.mongo import Document


class Banded(Protocol):
    """What the window needs of an entry: its id and its band keys."""

    @property
    def id(self) -> int: ...

    @property
    def bands(self) -> frozenset[int]: ...


E = TypeVar("E", bound=Banded)


class RecentWindow(Generic[E]):
    """The last ``size`` entries by id, in arrival order, indexed by band key."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"the recent window needs a size > 0, got {size}")
        self.size = size
        self._entries: OrderedDict[int, E] = OrderedDict()
        self._by_band: dict[int, set[int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, aid: object) -> bool:
        return aid in self._entries

    def get(self, aid: int) -> E | None:
        return self._entries.get(aid)

    def values(self) -> Iterable[E]:
        return self._entries.values()

    def remember(self, entry: E) -> None:
        """Add ``entry`` as the newest (replacing the entry of its id), evicting the oldest."""
        old = self._entries.pop(entry.id, None)
        if old is not None:
            self._unindex(old)
        self._entries[entry.id] = entry
        for key in entry.bands:
            self._by_band.setdefault(key, set()).add(entry.id)
        while len(self._entries) > self.size:
            _, evicted = self._entries.popitem(last=False)
            self._unindex(evicted)

    def sharing(self, keys: Iterable[int]) -> list[E]:
        """The entries sharing at least one of the band ``keys``, in no particular order."""
        ids: set[int] = set()
        for key in keys:
            found = self._by_band.get(key)
            if found:
                ids |= found
        return [self._entries[aid] for aid in ids]

    def index(self) -> dict[int, frozenset[int]]:
        """A copy of the band index (for checks and tests)."""
        return {key: frozenset(ids) for key, ids in self._by_band.items()}

    def _unindex(self, entry: E) -> None:
        for key in entry.bands:
            ids = self._by_band.get(key)
            if ids is None:
                continue
            ids.discard(entry.id)
            if not ids:
                del self._by_band[key]


Fetch = Callable[[list[int], int, list[int]], Awaitable[list[Document]]]
"""``fetch(keys, limit, skip)``: the stored documents (``_id``, ``minhash_bands`` and whatever
else the caller projects) whose ``minhash_bands`` contain any of ``keys``, at most ``limit``,
leaving out those whose ``_id`` is in ``skip``."""


class CandidateLookup:
    """Batches candidate look-ups: one ``fetch`` for the articles that arrive close together."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        batch_size: int,
        interval: float,
        limit: int,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self._fetch = fetch
        self.batch_size = batch_size
        self.interval = interval
        self.limit = limit
        # Several batches may be in flight at once (the shared batcher, crawler.batch).
        self._batcher: Batcher[tuple[frozenset[int], int | None], list[Document]] = Batcher(
            self._run,
            size=batch_size,
            interval=interval,
            concurrency=None,
            name="dedupe-lookup",
            idle=idle,
        )

    @property
    def waiting(self) -> int:
        """Look-ups waiting for their batch to go."""
        return self._batcher.waiting

    @property
    def batches(self) -> int:
        """Fetches sent."""
        return self._batcher.batches

    async def candidates(self, keys: frozenset[int], own: int | None = None) -> list[Document]:
        """The stored documents sharing a band key with ``keys`` (its own one included, unless
        ``own``: the id of a document stored with exactly ``keys`` that the caller needs nothing
        of, left out when no other waiter of the batch would be given it)."""
        if not keys:
            return []
        return await self._batcher.submit((keys, own))

    async def close(self) -> None:
        """Send what waits and let every batch in flight finish."""
        await self._batcher.close()

    async def _run(self, batch: list[tuple[frozenset[int], int | None]]) -> list[list[Document]]:
        keys: set[int] = set()
        by_key: dict[int, list[int]] = {}
        for position, (wanted, _) in enumerate(batch):
            keys |= wanted
            for key in wanted:
                by_key.setdefault(key, []).append(position)
        # An own document reaches only the waiters whose keys meet its bands (its waiter's
        # keys): left out when that is its waiter alone.
        skip = [
            own
            for position, (wanted, own) in enumerate(batch)
            if own is not None and all(by_key[key] == [position] for key in wanted)
        ]
        docs = await self._fetch(sorted(keys), self.limit * len(batch), sorted(skip))
        found: list[list[Document]] = [[] for _ in batch]
        for doc in docs:
            hit: set[int] = set()
            stored = doc.get("minhash_bands")
            if not isinstance(stored, list):
                continue
            for key in stored:
                with contextlib.suppress(TypeError):  # an unhashable stray value
                    hit.update(by_key.get(key, ()))
            for position in hit:
                if len(found[position]) < self.limit:
                    found[position].append(doc)
        return found
