"""Retries through the shared frontier: with backoff, honouring ``Retry-After``, for the cluster.

Scrapy's RetryMiddleware retries at once, inside one worker: a worker that dies forgets the
retry, and a 429 slows down only the worker that saw it. Here a retry is queued in Redis with a
delay (``TASS_RETRY_BACKOFF`` × 2^(attempt-1), capped at ``TASS_RETRY_BACKOFF_MAX``, at least
``Retry-After``), so any worker may take it when it is due; a ``Retry-After`` on 429/503 also
pauses every worker for that long. After ``RETRY_TIMES`` the failure reaches the spider's
errback, which records it (the ``failures`` collection and the dead-letter set).

A retry waiting in Redis is also known to MongoDB: before the retry is queued, the failed
attempt is sent as a ``PageFailure`` with ``retry_at`` (signal ``retry_state``; the store writes
it as the ``retry`` of the URL's ``failures`` document and returns once it is written), and a
retried request that answers settles it (``RetrySettled``). So a Redis that loses its state
loses no retry for good: ``crawler.frontier.recovery`` queues the pending ones again.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.utils.response import response_status_message

from crawler import defaults
from crawler.failure import http_reason, reason_of
from crawler.frontier import signals as frontier_signals
from crawler.frontier.codec import ATTEMPT_META, DELAY_META, encode_request
from crawler.frontier.lifecycle import RunSpider
from crawler.items import PageFailure, RetrySettled
from crawler.offsite import asked_url
from crawler.retrying import backoff

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: bytes | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


class FrontierRetryMiddleware(RetryMiddleware):
    """RetryMiddleware whose retries wait in the frontier instead of being sent at once.

    Only the public parts of Scrapy's middleware are used: its settings (retry codes,
    exceptions, ``RETRY_TIMES``...) and ``get_retry_request()``, which counts, logs and gives up
    as Scrapy does."""

    def backoff(self, request: Request) -> float:
        settings = self.crawler.settings
        base = settings.getfloat("TASS_RETRY_BACKOFF", defaults.TASS_RETRY_BACKOFF)
        cap = settings.getfloat("TASS_RETRY_BACKOFF_MAX", defaults.TASS_RETRY_BACKOFF_MAX)
        return backoff(int(request.meta.get("retry_times", 1)), base, cap)

    def retry(self, request: Request, reason: str | Exception) -> Request | None:
        """The retry of ``request`` (``get_retry_request`` with the middleware's settings and
        the request's own ``max_retry_times``/``priority_adjust``), or None once exhausted."""
        assert self.crawler.spider is not None
        meta = request.meta
        return get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=meta.get("priority_adjust", self.priority_adjust),
            give_up_log_level=meta.get("give_up_log_level", self.give_up_log_level),
        )

    def _delayed(self, retry: Request | None, wait: float | None) -> Request | None:
        if retry is None:
            return None
        delay = self.backoff(retry)
        if wait is not None:
            delay = max(delay, wait)
        retry.meta[DELAY_META] = delay
        return retry

    async def _tell(self, change: PageFailure | RetrySettled) -> None:
        """Tell the store (``retry_state``) and wait until it has written ``change``."""
        await self.crawler.signals.send_catch_log_async(
            signal=frontier_signals.retry_state, change=change
        )

    async def _pending(self, request: Request, retry: Request | None, why: tuple[Any, ...]) -> None:
        """Record the failed attempt ``request`` whose ``retry`` is about to be queued."""
        if retry is None:
            return
        member = self._member(retry)
        if member is None:
            return  # not one of the spider's requests (robots.txt): not the frontier's to keep
        reason, detail, status = why
        due = datetime.now(UTC) + timedelta(seconds=float(retry.meta.get(DELAY_META, 0)))
        await self._tell(
            PageFailure(
                url=self.asked(request), reason=reason, detail=str(detail)[:1000],
                status=status, attempts=int(request.meta.get("retry_times", 0)) + 1,
                article_id=request.meta.get("article_id"), retry_at=due,
                retry_request=member,
            )
        )  # fmt: skip

    def _member(self, retry: Request) -> str | None:
        """The retry as recovery queues it again: its retry count kept, the rest of what
        describes one attempt dropped, and no longer a seed of its run (None: a request the
        frontier cannot queue, whose callback is not the spider's)."""
        dropped = {*ATTEMPT_META, "seed"} - {"retry_times"}
        fresh = retry.replace(meta={k: v for k, v in retry.meta.items() if k not in dropped})
        assert self.crawler.spider is not None
        try:
            return encode_request(fresh, self.crawler.spider).decode()
        except (TypeError, ValueError) as exc:
            logger.debug("The retry of %s is not kept in MongoDB: %s", retry.url, exc)
            return None

    def asked(self, request: Request) -> str:
        """The URL the request's outcome is recorded under (the spider's ``asked``)."""
        spider = self.crawler.spider
        return spider.asked(request) if isinstance(spider, RunSpider) else asked_url(request)

    # Scrapy awaits a downloader middleware's coroutine methods; the parent's are plain ones.
    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            if request.meta.get("retry_times") and response.status < 400:
                await self._tell(RetrySettled(self.asked(request)))
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if wait is not None and response.status in (429, 503):
            self.crawler.signals.send_catch_log(
                signal=frontier_signals.pause_requested, seconds=wait
            )
        retry = self._delayed(self.retry(request, response_status_message(response.status)), wait)
        await self._pending(request, retry, http_reason(response.status))
        return retry or response

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Any:
        if isinstance(exception, self.exceptions_to_retry) and not request.meta.get(
            "dont_retry", False
        ):
            retry = self._delayed(self.retry(request, exception), None)
            await self._pending(request, retry, reason_of(exception))
            return retry
        return None
