"""Secrets never reach a log line or an error message: credentials in URLs are masked.

``redact(text)`` masks the password (and user) of every ``scheme://user:password@host`` in a
text: the Redis and MongoDB URLs carry their passwords there (``crawler.settings`` puts the
``*_PASSWORD`` values into them). ``RedactingFilter`` applies it to every log record, its
arguments and its traceback; ``install()`` puts one on every handler of the root logger (the
commands call it when they start, the local-services add-on when a crawler is built).
"""

from __future__ import annotations

import logging
import re
import traceback

_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^\s/@'\"]*@", re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", text)


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and traceback (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """A ``RedactingFilter`` on every root handler (once each)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
