"""What Redis lost, rebuilt from what MongoDB knows: pending retries, and the seen articles.

A retry waits in Redis (the delayed set) until it is due; before it is queued, the retry
middleware has the store write it into the URL's ``failures`` document as ``retry`` (when it
is due, why the attempt failed, how many attempts failed so far), and the store drops it once
the URL is stored, fails for good or answers (``crawler.frontier.retry``, ``pipelines.store``).
So when Redis loses its state (``lifecycle.RunLifecycle.lose``) or a run is abandoned, every
retry it held is still a ``failures`` document with a ``retry``. Dead letters are kept in
Redis too (for ``scrapy replay``), and their failures in MongoDB.

The worker that begins a run queues every pending retry again, as it was queued (the
``retry.request`` member: its meta, its retry count, a listing page's body), in the script call
that begins the run and queues its seeds (``pending_pushes``: none is pending in Redis when a
run begins, since a run ends only once nothing is delayed and an abandoned or lost run's queue
is gone). ``scrapy replay --from-mongo`` (``requeue``) queues the failures a user picks:
pending retries the same way, and final failures, whose dead letters may be gone with Redis, by
feeding their URLs on ``<prefix>:start_urls`` (``crawler.frontier.feed``: checked, queued as a
refresh, never dropped in silence). A retry found again is due at once (its backoff is not
kept). The ``failures`` document is keyed by URL, so of several pending retries of one URL with
different bodies (the listing API's pages) the last is kept, as with dead letters.

A Redis that lost its state (or a new, empty one in front of an existing archive) also lost
the seen-articles bitmap, so the next backfill would fetch every stored article again (weeks at
the site's rate, for a million articles). ``restore_seen`` rebuilds it from the ids in
``articles`` before a run begins on an empty Redis (no epoch yet); the change-detection
record (``versions``) is not rebuilt: the next incremental run fetches the articles its feeds
name as if new, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from crawler import mongo
from crawler.frontier.feed import feed_urls
from crawler.frontier.queue import Push, RedisFrontier
from crawler.mongo import FAILURES, Document, MongoConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from crawler.frontier.keys import FrontierKeys

PENDING: Document = {"retry": {"$exists": True}}
"""The ``failures`` documents whose retry was waiting in Redis."""


def failures_query(
    *, pending: bool = False, reason: str | None = None, urls: list[str] | None = None
) -> Document:
    """The ``failures`` documents to queue again: those with a pending retry, or all; of
    ``reason`` (a prefix) or ``urls`` if given."""
    query: Document = dict(PENDING) if pending else {}
    if reason:
        query["reason"] = {"$regex": "^" + re.escape(reason)}
    if urls:
        query["url"] = {"$in": urls}
    return query


def _request_of(doc: Document) -> str | None:
    """The member of ``doc``'s pending retry, if it has one."""
    retry = doc.get("retry")
    member = retry.get("request") if isinstance(retry, dict) else None
    return member if isinstance(member, str) and member else None


def pushes_of(docs: list[Document]) -> list[Push]:
    """The queue pushes of the pending retries among ``docs``, as their retries were queued."""
    return [Push.again(member) for doc in docs if (member := _request_of(doc)) is not None]


def read(config: MongoConfig, query: Document) -> list[Document]:
    """The ``failures`` documents matching ``query`` (URL, reason, attempts, retry), by URL."""
    fields = {"_id": 0, "url": 1, "reason": 1, "attempts": 1, "retry": 1}
    with config.open() as db:
        return list(db[FAILURES].find(query, fields).sort("url", 1))


async def pending_pushes(config: MongoConfig, deadline: Callable[[], float]) -> list[Push]:
    """The pushes of every retry MongoDB knows to be pending (asked until ``deadline``)."""
    docs = await mongo.retry(lambda: read(config, PENDING), what="failures", deadline=deadline)
    return pushes_of(docs)


def seen_bitmap(ids: list[int]) -> bytes:
    """The ``seen:articles`` bitmap (Redis bit order: bit 0 is the top bit of byte 0) of
    ``ids``."""
    if not ids:
        return b""
    bitmap = bytearray(max(ids) // 8 + 1)
    for article_id in ids:
        bitmap[article_id >> 3] |= 0x80 >> (article_id & 7)
    return bytes(bitmap)


def _stored_ids(config: MongoConfig) -> list[int]:
    with config.open() as db:
        return [
            int(d["_id"])
            for d in db[mongo.ARTICLES].find({}, {"_id": 1})
            if isinstance(d["_id"], int) and d["_id"] > 0
        ]


async def restore_seen(
    client: Redis, keys: FrontierKeys, config: MongoConfig, deadline: Callable[[], float]
) -> int:
    """On a Redis with no epoch (emptied, or new), the seen-articles bitmap rebuilt from the
    stored articles' ids, unless another worker did it first; how many ids it holds (0: Redis
    had its state, or MongoDB no articles)."""
    if await client.exists(keys.epoch):
        return 0
    ids = await mongo.retry(lambda: _stored_ids(config), what="stored ids", deadline=deadline)
    if not ids or not await client.set(keys.seen_articles, seen_bitmap(ids), nx=True):
        return 0
    return len(ids)


async def requeue(
    client: Redis,
    keys: FrontierKeys,
    config: MongoConfig,
    query: Document,
    deadline: Callable[[], float],
) -> tuple[int, int]:
    """Queue again the ``failures`` documents matching ``query``: pending retries as they were,
    the others' URLs fed on ``start_urls``; their dead letters go. (retries, URLs fed)."""
    docs = await mongo.retry(lambda: read(config, query), what="failures", deadline=deadline)
    pushes = pushes_of(docs)
    if pushes:
        await RedisFrontier(client, keys).flush(pushes, [])
    fed = [str(d["url"]) for d in docs if _request_of(d) is None]
    if fed:
        await feed_urls(client, keys, fed)
    if docs:
        await client.hdel(keys.dead, *[str(d["url"]) for d in docs])
    return len(pushes), len(fed)
