"""The one MongoDB connection helper: every command, stage and report builds its client here.

``MongoConfig.from_settings`` reads ``MONGO_URI``, ``MONGO_DATABASE``, ``TASS_MONGO_TIMEOUT`` and
``TASS_MONGO_RETRY_DEADLINE``; an empty ``MONGO_URI`` raises ``NotConfigured`` (the zero-config
add-on fills it before the pipelines are built). ``acquire``/``release`` hand out one client per
crawler, counted, and close it when the last stage lets go: the registry is keyed by the crawler
object (weakly), so two crawlers in one process never share a client or any other state.

``MongoConfig.open()`` is the same client for one-off use (``scrapy report``, the run report,
the demo), closed when the ``with`` block ends.

pymongo is blocking; callers run every call in a worker thread (``asyncio.to_thread``) and wrap
it in ``retry``, which waits out a MongoDB outage with capped exponential backoff (the policy;
the mechanism is ``crawler.retrying``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Self, TypeVar

import pymongo
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from crawler import defaults, retrying
from crawler.retrying import RetryDeadlineExceeded

__all__ = [
    "Document",
    "MongoConfig",
    "MongoConnection",
    "RetryDeadlineExceeded",
    "TransientMongoError",
    "acquire",
    "is_transient",
    "release",
    "retry",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Document = dict[str, Any]

# The collections, by name (the document shapes are ``pipelines.schema``'s).
ARTICLES = "articles"
FAILURES = "failures"
REVISIONS = "revisions"
RUNS = "runs"

# Server error codes that mean "try again later" (shutdown, election, interrupted, timeouts).
TRANSIENT_CODES = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 64, 50}
)


@dataclass(frozen=True, slots=True)
class MongoConfig:
    """Where the articles live and how long to wait for MongoDB."""

    uri: str
    database: str = defaults.MONGO_DATABASE
    timeout: float = defaults.TASS_MONGO_TIMEOUT
    retry_deadline: float = defaults.TASS_MONGO_RETRY_DEADLINE

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        uri = (settings.get("MONGO_URI") or "").strip()
        if not uri:
            raise NotConfigured(
                "MONGO_URI is empty: set it to a mongodb:// URL (the zero-config add-on "
                "starts an embedded server and fills it in)"
            )
        if not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"MONGO_URI must be a mongodb:// URL, got {uri!r}")
        database = (settings.get("MONGO_DATABASE") or "").strip()
        if not database or any(c in database for c in '/\\. "$'):
            raise ValueError(f"MONGO_DATABASE must be a plain database name, got {database!r}")
        timeout = settings.getfloat("TASS_MONGO_TIMEOUT", defaults.TASS_MONGO_TIMEOUT)
        if not timeout > 0:
            raise ValueError(f"TASS_MONGO_TIMEOUT must be > 0 seconds, got {timeout}")
        deadline = settings.getfloat(
            "TASS_MONGO_RETRY_DEADLINE", defaults.TASS_MONGO_RETRY_DEADLINE
        )
        if not deadline > 0:
            raise ValueError(f"TASS_MONGO_RETRY_DEADLINE must be > 0 seconds, got {deadline}")
        return cls(uri=uri, database=database, timeout=timeout, retry_deadline=deadline)

    def client(self) -> pymongo.MongoClient[Document]:
        """A new client; it connects lazily, in the background, so this never blocks."""
        ms = int(self.timeout * 1000)
        return pymongo.MongoClient(
            self.uri,
            tz_aware=True,
            tzinfo=UTC,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=max(ms * 6, 60_000),
            appname="tass-crawler",
        )

    @contextlib.contextmanager
    def open(self) -> Iterator[Database[Document]]:
        """The database on a client of its own, closed when the block ends."""
        client = self.client()
        try:
            yield client[self.database]
        finally:
            client.close()


@dataclass(slots=True)
class MongoConnection:
    """A crawler's client and database, with the number of stages using them."""

    config: MongoConfig
    client: pymongo.MongoClient[Document]
    users: int = 0
    db: Database[Document] = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.client[self.config.database]


_CONNECTIONS: weakref.WeakKeyDictionary[Crawler, MongoConnection] = weakref.WeakKeyDictionary()


def acquire(crawler: Crawler, config: MongoConfig) -> MongoConnection:
    """The crawler's shared connection, created on first use."""
    conn = _CONNECTIONS.get(crawler)
    if conn is None:
        conn = MongoConnection(config, config.client())
        _CONNECTIONS[crawler] = conn
    conn.users += 1
    return conn


async def release(crawler: Crawler) -> None:
    """Let go of the crawler's connection; the last user closes the client (off the loop)."""
    conn = _CONNECTIONS.get(crawler)
    if conn is None:
        return
    conn.users -= 1
    if conn.users <= 0:
        del _CONNECTIONS[crawler]
        await asyncio.to_thread(conn.client.close)


class TransientMongoError(RuntimeError):
    """A write failed on the server for a reason that may pass; the caller retries it."""


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: the server is away, restarting or busy."""
    if isinstance(exc, ConnectionFailure | TransientMongoError):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") in TRANSIENT_CODES for e in errors)
    if isinstance(exc, OperationFailure):
        return exc.code in TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError") or exc.has_error_label(
            "TransientTransactionError"
        )
    return False


async def retry(
    call: Callable[[], T],
    *,
    what: str,
    deadline: Callable[[], float],
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run the blocking ``call`` in a thread until it succeeds or ``deadline()`` passes.

    MongoDB's policy for the one retry helper (``crawler.retrying``): only transient errors are
    retried, with capped, jittered exponential backoff; ``deadline`` returns a
    ``time.monotonic()`` instant and is asked again after every failure, so a caller may shorten
    it (a closing store does). After it, the last error is chained to ``RetryDeadlineExceeded``.
    """
    return await retrying.retry(
        lambda: asyncio.to_thread(call),
        what=what,
        retry_on=is_transient,
        deadline=deadline,
        on_retry=on_retry,
    )
