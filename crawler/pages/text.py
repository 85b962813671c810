"""Small text helpers shared by the page objects: whitespace, Unicode form and decoding."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

from w3lib.encoding import html_to_unicode

_WS = re.compile(r"\s+")
MSK = timezone(timedelta(hours=3))
"""The site's time zone."""


def clean_text(value: str) -> str:
    """NFC-normalised text, U+FFFD (undecodable bytes) dropped, whitespace collapsed, stripped."""
    return _WS.sub(" ", unicodedata.normalize("NFC", value).replace("\ufffd", "")).strip()


def decode_html(body: str | bytes, encoding: str | None = None) -> str:
    """The page as text: ``body`` itself, or bytes decoded with ``encoding``.

    Without an ``encoding`` (the HTTP charset), the BOM and then ``<meta charset>`` decide,
    UTF-8 by default. Undecodable bytes become U+FFFD rather than failing the page.
    """
    if isinstance(body, str):
        return body
    header = f"text/html; charset={encoding}" if encoding else None
    _enc, text = html_to_unicode(header, body)
    return text


def parse_iso(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string with an offset; None when unusable.

    A value without an offset is taken as Moscow time (+03:00), the site's zone.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=MSK)
    return parsed.astimezone(UTC)


def from_unix(value: object) -> datetime | None:
    """An aware UTC datetime from unix seconds (int or digit string); None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"\d{1,12}(\.\d+)?", value):
            return None
        value = float(value)
    if not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
