"""Retries through the shared frontier: with backoff, honouring ``Retry-After``, for the cluster.

Scrapy's RetryMiddleware retries at once, inside one worker: a worker that dies forgets the
retry, and a 429 slows down only the worker that saw it. Here a retry is queued in Redis with a
delay (``TASS_RETRY_BACKOFF`` × 2^(attempt-1), capped at ``TASS_RETRY_BACKOFF_MAX``, at least
``Retry-After``), so any worker may take it when it is due; a ``Retry-After`` on 429/503 also
pauses every worker for that long. After ``RETRY_TIMES`` the failure reaches the spider's
errback, which records it (the ``failures`` collection and the dead-letter set).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.utils.response import response_status_message

from crawler import defaults
from crawler.frontier import signals as frontier_signals
from crawler.frontier.codec import DELAY_META
from crawler.retrying import backoff

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response

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

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if wait is not None and response.status in (429, 503):
            self.crawler.signals.send_catch_log(
                signal=frontier_signals.pause_requested, seconds=wait
            )
        retry = self._delayed(self.retry(request, response_status_message(response.status)), wait)
        return retry or response

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Any:
        if isinstance(exception, self.exceptions_to_retry) and not request.meta.get(
            "dont_retry", False
        ):
            return self._delayed(self.retry(request, exception), None)
        return None
