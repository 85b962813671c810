"""The one MongoDB connection helper: every command, stage and report builds its client here.

``MongoConfig.from_settings`` reads ``MONGO_URI``, ``MONGO_DATABASE``, ``TASS_MONGO_TIMEOUT`` and
``TASS_MONGO_RETRY_DEADLINE``; an empty ``MONGO_URI`` raises ``NotConfigured`` (the zero-config
add-on fills it before the pipelines are built). ``acquire``/``release`` hand out one client per
crawler, counted, and close it when the last stage lets go: the registry is keyed by the crawler
object (weakly), so two crawlers in one process never share a client or any other state.

``MongoConfig.open()`` is the same client for one-off use (``scrapy report``, the run report,
the demo), closed when the ``with`` block ends.

pymongo is blocking; callers run every call in a thread of its own and wrap it in ``retry``,
which waits out a MongoDB outage with capped exponential backoff (the policy; the mechanism is
``crawler.retrying``); a ``ShutdownClock`` cuts that wait short once the crawler is being
stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import threading
import time
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
    "ShutdownClock",
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
PAGES = "pages"
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


class ShutdownClock:
    """The last instant a stage may keep waiting out MongoDB once its crawler is stopping.

    On SIGTERM Scrapy first waits for every item in the pipelines and only then closes them, so
    a stage holding an item through a MongoDB outage must notice the stop by itself, or the
    worker waits for the whole ``TASS_MONGO_RETRY_DEADLINE`` and is killed before the store can
    spill. The stop shows as ``Crawler.crawling`` turning false (at once on SIGTERM; after the
    pipelines are closed on a normal end); a stage built outside a crawl (``crawling`` false
    from the start, as in tests) never sees one. From the first time any stage of the crawler
    asks for a deadline after the stop, its MongoDB calls get ``grace`` more seconds
    (``TASS_STORE_CLOSE_DEADLINE``): one clock per crawler (``of``), so the dedupe and store
    stages share one wait instead of adding theirs up.
    """

    def __init__(self, crawler: Crawler, grace: float) -> None:
        self.crawler = crawler
        self.grace = grace
        self.armed = bool(crawler.crawling)  # stages are built when the crawl starts
        self.began: float | None = None

    @classmethod
    def of(cls, crawler: Crawler) -> ShutdownClock:
        """The crawler's clock, made on first use."""
        clock = _CLOCKS.get(crawler)
        if clock is None:
            grace = crawler.settings.getfloat(
                "TASS_STORE_CLOSE_DEADLINE", defaults.TASS_STORE_CLOSE_DEADLINE
            )
            clock = _CLOCKS[crawler] = cls(crawler, grace)
        return clock

    def deadline(self) -> float:
        """A ``time.monotonic()`` instant; infinity while the crawler is not stopping."""
        if self.began is None and self.armed and not self.crawler.crawling:
            self.began = time.monotonic()
            logger.info("The crawler is stopping: MongoDB is waited for %.0fs more", self.grace)
        return math.inf if self.began is None else self.began + self.grace


_CLOCKS: weakref.WeakKeyDictionary[Crawler, ShutdownClock] = weakref.WeakKeyDictionary()


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
    retried, with capped, jittered exponential backoff. ``deadline`` returns a
    ``time.monotonic()`` instant and is asked again after every failure, and every second while
    an attempt is under way, so a caller may shorten it (a stopping crawler does:
    ``ShutdownClock``). An attempt that outlives the deadline is abandoned (its thread ends by
    itself; a write it still makes is one the caller treats as not made, and the store's writes
    are idempotent). After the deadline the last error is chained to ``RetryDeadlineExceeded``.
    """
    return await retrying.retry(
        lambda: _attempt(call, what, deadline),
        what=what,
        retry_on=is_transient,
        deadline=deadline,
        on_retry=on_retry,
    )


ATTEMPT_POLL = 1.0
"""Seconds between looks at the deadline while one attempt is under way."""


async def _attempt(call: Callable[[], T], what: str, deadline: Callable[[], float]) -> T:
    task = _in_own_thread(call)
    while True:
        done, _ = await asyncio.wait({task}, timeout=ATTEMPT_POLL)
        if done:
            return task.result()
        if time.monotonic() > deadline():
            task.add_done_callback(_forget)
            raise RetryDeadlineExceeded(f"{what}: MongoDB did not answer before the deadline")


THREAD_IDLE = 10.0
"""Seconds an idle MongoDB call thread waits for the next call before it ends."""


STREAM_RESUMES = 5
"""Consecutive transient failures after which ``stream_by_id`` gives up."""


def stream_by_id(
    collection: Any,
    query: Document,
    projection: Document | None = None,
    *,
    batch_size: int = 500,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Document]:
    """Every document of ``collection`` matching ``query``, in ``_id`` order, through a long read:
    a transient error mid-cursor (a pool reset cancels an open cursor: ``AutoReconnect``)
    resumes after the last ``_id`` given, with backoff, up to ``STREAM_RESUMES`` times in a row.
    What ``scrapy export`` reads an archive of any size with."""
    last: Any = None
    failures = 0
    while True:
        wanted = query if last is None else {"$and": [query, {"_id": {"$gt": last}}]}
        try:
            cursor = collection.find(wanted, projection).sort("_id", 1).batch_size(batch_size)
            for doc in cursor:
                last, failures = doc["_id"], 0
                yield doc
            return
        except PyMongoError as exc:
            failures += 1
            if not is_transient(exc) or failures > STREAM_RESUMES:
                raise
            wait = retrying.backoff(failures, defaults.BACKOFF_INITIAL, defaults.BACKOFF_MAX)
            logger.warning("Reading %s failed (%s): resuming after _id %r in %.1fs",
                           collection.name, exc, last, wait)  # fmt: skip
            sleep(wait)


class _CallThreads:
    """Daemon threads for blocking calls: each call runs in a thread of its own, an idle one if
    there is one, else a new one. A thread that finished a call waits ``THREAD_IDLE`` seconds
    for another, then ends. Starting a thread costs about as much as a small query (the profile
    showed ``Thread.start`` among the top frames), and a crawl makes several calls a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []

    def forget(self) -> None:
        """Hand out none of the idle threads known so far (a forked child has none of them)."""
        self._lock = threading.Lock()
        self._idle = []

    def start(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._serve, args=(inbox,), name="tass-mongo-call", daemon=True
            )
            thread.start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=THREAD_IDLE)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # nobody took it: end
                        self._idle.remove(inbox)
                        return
                continue  # taken just now: its call is on the way
            job()
            with self._lock:
                self._idle.append(inbox)


_THREADS = _CallThreads()
# A forked child has none of its parent's threads: their inboxes must not be handed out there.
os.register_at_fork(after_in_child=_THREADS.forget)


def _in_own_thread(call: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``call`` in a daemon thread of its own, not in the event loop's default executor.

    Through an outage one attempt can hold its thread for minutes (seen: name lookups of a
    MongoDB container that is gone). In the default executor a few of those starve everything
    else that runs in threads there (the loop's own name lookups for Redis, the store's spill
    write), and the interpreter waits for its threads at exit; a daemon thread of its own
    blocks nothing and is abandoned at exit. The threads are kept a while for the next calls
    (``_CallThreads``): a call never waits for another call's thread.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    _THREADS.start(run)
    return future


def _forget(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned attempt's outcome, so that asyncio does not report it."""
    if not task.cancelled():
        task.exception()
