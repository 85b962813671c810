"""The site's text and time, one set of rules for the page objects and the clean stage.

Text: ``clean_text`` is the one normaliser (control characters and U+FFFD dropped, NFC,
whitespace runs collapsed, trimmed). The page objects used to drop U+FFFD and the clean stage
kept it; it is dropped everywhere now, deliberately: U+FFFD only ever stands for bytes that could
not be decoded, never for article text, so keeping it in a stored body is a defect, whichever
stage sees it first. The same goes for control characters (``strip_controls``): NUL, the other
C0 and C1 controls and DEL, which pages carry (raw, as character references, or as JSON-LD
``\\u0000`` escapes) but no article text holds, and lone surrogates (a JSON-LD ``\\ud800`` with no
pair), which are not text at all and which MongoDB cannot even store. The controls that are
whitespace (tab, line ends, form feed, the separators U+001C-U+001F, NEL) are whitespace like
any other: collapsed to one space.
``strip_title_suffix`` is the one `` - TASS`` rule: the dash needs a space on each side, so a
headline ending in "ITAR-TASS" keeps it (the clean stage's own rule used to cut it).

``SECTION_NAMES`` are the sections' display names.

Time: the site prints Moscow time, UTC+03:00 all year since October 2014 (``SITE_TZ``).
``site_time`` is the one place where a naive moment is read as site time and made UTC; the page
objects' parsers and the clean stage both go through it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

from w3lib.encoding import html_to_unicode

_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff\ufffd]")
"""Control characters that are not whitespace (Unicode category Cc less tab, line ends, form
feed, U+001C-U+001F and NEL), lone surrogates (Cs) and U+FFFD: never article text."""
_TITLE_SUFFIX = re.compile(r"\s+[-–—|]\s+TASS\s*$")

SECTION_NAMES = frozenset(
    name.casefold()
    for name in (
        "Russian Politics & Diplomacy",
        "World",
        "Business & Economy",
        "Military & Defense",
        "Science & Space",
        "Emergencies",
        "Society & Culture",
        "Press Review",
        "Sports",
        "Sport",
    )
)
"""The sections' display names (spec §2), case-folded: a label that is one of them names the
section, not a theme."""

SITE_TZ = timezone(timedelta(hours=3), "MSK")
"""The site's time zone: Moscow, UTC+03:00 all year since October 2014."""


def strip_controls(value: str) -> str:
    """``value`` without control characters, lone surrogates and U+FFFD (``_NOT_TEXT``), NFC;
    whitespace is left as it is (``clean_text`` collapses it, the clean stage first splits a
    body into paragraphs at its blank lines)."""
    if _NOT_TEXT.search(value) is not None:  # a scan is cheaper than a substitution
        value = _NOT_TEXT.sub("", value)
    return unicodedata.normalize("NFC", value)


def clean_text(value: object) -> str:
    """Text without control characters and U+FFFD (``strip_controls``), NFC-normalised,
    whitespace collapsed, stripped; None becomes ``""``.

    Whitespace is what ``str.split()`` splits on (``str.isspace``, the same characters as
    ``re``'s ``\\s``): a split and a join collapse and trim it in one pass, several times faster
    than a regex substitution on a whole body."""
    if value is None:
        return ""
    return " ".join(strip_controls(str(value)).split())


def strip_title_suffix(title: str) -> tuple[str, bool]:
    """``title`` without trailing `` - TASS`` suffixes (any dash or ``|``, spaced), and whether
    one was removed. The text is cleaned first."""
    title = clean_text(title)
    stripped = False
    while True:
        shorter = _TITLE_SUFFIX.sub("", title)
        if shorter == title:
            return title.strip(), stripped
        title, stripped = shorter, True


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


def site_time(moment: datetime) -> tuple[datetime, bool]:
    """``moment`` in UTC, and whether it was naive (then read as site time, ``SITE_TZ``)."""
    naive = moment.tzinfo is None or moment.utcoffset() is None
    if naive:
        moment = moment.replace(tzinfo=SITE_TZ)
    return moment.astimezone(UTC), naive


def parse_iso(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO 8601 string; None when unusable. ``Z`` is UTC; a value
    without an offset is site time."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return site_time(parsed)[0]


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
