"""Why a request failed, as the ``failures`` collection records it (``reason``, ``detail``,
``status``): one classification for the spider's errback (a final failure) and the retry
middleware (a failed attempt whose retry waits, ``crawler.frontier.retry``)."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.offsite import OffsiteRequest


def is_robots_refusal(exc: BaseException) -> bool:
    """True when robots.txt forbade the request (skipped, not a failure)."""
    text = str(exc)
    return isinstance(exc, IgnoreRequest) and (
        "robots.txt" in text or "Forbidden by robots" in text
    )


def http_reason(status: int) -> tuple[str, str, int]:
    """The failure of a response answered with ``status``."""
    return f"http_{status}", f"answered {status}", status


def reason_of(exc: BaseException) -> tuple[str, str, int | None]:
    """The failure ``exc`` stands for: (reason, detail, HTTP status or None)."""
    if isinstance(exc, OffsiteRequest):
        return exc.reason, str(exc), None
    if isinstance(exc, HttpError):
        return http_reason(exc.response.status)
    text = str(exc)
    if isinstance(exc, IgnoreRequest):
        reason = "redirect_loop" if "redirect" in text.lower() else "ignored"
        if "DOWNLOAD_MAXSIZE" in text or "max size" in text.lower():
            reason = "too_large"
        return reason, text, None
    name = type(exc).__name__
    if "maxsize" in text.lower() or "max size" in text:
        reason = "too_large"
    elif "DataLoss" in name:
        reason = "truncated"  # the connection closed before Content-Length was met
    else:
        reason = f"network:{name}"
    return reason, text or name, None
