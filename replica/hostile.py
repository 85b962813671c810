"""Hostile pages: the traps a robust crawler must survive, and what it should do with each.

Each trap has an article-shaped URL (an odd id below the oldest real article, so never a real
one) or, for the calendar, an ``/archive/YYYY/MM/DD`` path. Two real articles are served
hostilely too: one in windows-1251 and one with undecodable bytes; both are valid articles and
appear in the ground truth. ``HostileSet.entries`` is the ``hostile`` list of the truth.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import datetime

from replica.corpus import MSK, Archive

HUGE_PAGE_BYTES = 50 * 1024 * 1024
GZIP_BOMB_MB = 1100
BAD_BYTES = b"\xff\xfe\xfa"
"""Inserted between two sentences of the invalid-bytes article (and into its sidebar)."""


@dataclass(frozen=True, slots=True)
class HostileEntry:
    """One line of the truth's ``hostile`` list."""

    path: str
    kind: str
    expect: str
    """``failure`` (no item, an error is right), ``skip`` (do not follow) or ``article``."""
    why: str
    label: str
    """Link text on the home page."""


class HostileSet:
    """Where the traps live for one archive."""

    def __init__(self, archive: Archive, now: int) -> None:
        self.huge = f"/world/{archive.hostile_id(0)}"
        self.gzip_bomb = f"/economy/{archive.hostile_id(1)}"
        loop_id = archive.hostile_id(2)
        self.loop_a = f"/politics/{loop_id}"
        self.loop_b = f"/society/{loop_id}"
        self.truncated = f"/science/{archive.hostile_id(3)}"
        self.empty = f"/emergencies/{archive.hostile_id(4)}"
        today = datetime.fromtimestamp(now, MSK)
        self.calendar = f"/archive/{today:%Y/%m/%d}"
        self.cp1251_index = archive.special["cp1251"]
        self.invalid_index = archive.special["invalid_bytes"]
        cp = archive.articles[self.cp1251_index].path
        bad = archive.articles[self.invalid_index].path
        self.entries = (
            HostileEntry(
                self.huge,
                "huge_page",
                "failure",
                f"article-shaped page of {HUGE_PAGE_BYTES} bytes; abort past a sane "
                "DOWNLOAD_MAXSIZE",
                "Full transcript of the plenary session",
            ),
            HostileEntry(
                self.gzip_bomb,
                "gzip_bomb",
                "failure",
                f"~1 MB gzip body (Content-Encoding: gzip) inflating to {GZIP_BOMB_MB} MB;"
                " cap decompressed size",
                "Complete statistics archive",
            ),
            HostileEntry(
                self.loop_a,
                "redirect_loop",
                "failure",
                f"301 to {self.loop_b}, which 301s back; stop after a few redirects",
                "Breaking: live updates",
            ),
            HostileEntry(
                self.calendar,
                "calendar",
                "skip",
                "endless day-by-day archive (prev/next day links forever); not articles,"
                " do not follow the calendar",
                "News archive",
            ),
            HostileEntry(
                cp,
                "cp1251",
                "article",
                "valid article served as windows-1251 (header and meta charset); decode"
                " by the declared charset",
                "Press digest",
            ),
            HostileEntry(
                self.truncated,
                "truncated",
                "failure",
                "Content-Length promises the whole page, the connection closes mid-body"
                " (data loss); do not store a partial article",
                "Exclusive interview",
            ),
            HostileEntry(
                bad,
                "invalid_bytes",
                "article",
                "valid article whose UTF-8 has stray bytes 0xFF 0xFE 0xFA between two "
                "sentences; decode with errors='replace', drop U+FFFD, collapse spaces",
                "Regional roundup",
            ),
            HostileEntry(
                self.empty,
                "empty_body",
                "failure",
                "200 with an empty body on an article URL; nothing to extract",
                "Developing story",
            ),
        )
        self.by_path = {e.path: e for e in self.entries}


_gzip_bomb: bytes | None = None


def gzip_bomb() -> bytes:
    """A gzip member of about 1 MB that inflates to ``GZIP_BOMB_MB`` MiB of HTML-ish spaces."""
    global _gzip_bomb  # noqa: PLW0603 - built once, lazily: it costs about a second
    if _gzip_bomb is not None:
        return _gzip_bomb
    prefix = b"<!DOCTYPE html><html><head><title>Archive - TASS</title></head><body><p>"
    chunk = b" " * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15, 9).flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(GZIP_BOMB_MB):
        crc = zlib.crc32(chunk, crc)
    size = len(prefix) + GZIP_BOMB_MB * len(chunk)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    trailer = struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)
    _gzip_bomb = header + head + block * GZIP_BOMB_MB + tail + trailer
    return _gzip_bomb


def huge_page_chunks(chunk_size: int = 1 << 18) -> tuple[bytes, bytes, int]:
    """(prefix, repeated chunk, count) plus padding rules: see ``huge_page_parts``."""
    prefix = (
        b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        b"<title>Full transcript of the plenary session - TASS</title></head><body>"
        b'<main class="container"><div class="news" id="news"><div class="news-header">'
        b'<h1 class="news-header__title">Full transcript of the plenary session</h1></div>'
        b'<div class="text-content"><div class="text-block">'
    )
    para = b"<p>MOSCOW, October 7. /TASS/. The session went on and on and on.</p>\n"
    chunk = para * (chunk_size // len(para))
    return prefix, chunk, chunk_size


def huge_page_parts() -> list[bytes]:
    """The pieces of the huge page, summing to exactly ``HUGE_PAGE_BYTES`` (shared chunk)."""
    prefix, chunk, _ = huge_page_chunks()
    suffix = b"</div></div></div></main></body></html>"
    room = HUGE_PAGE_BYTES - len(prefix) - len(suffix)
    full, rest = divmod(room, len(chunk))
    return [prefix, *([chunk] * full), b" " * rest, suffix]


def with_bad_bytes(page: bytes) -> bytes:
    """Insert ``BAD_BYTES`` after the first sentence of the second body paragraph."""
    start = page.find(b'<div class="text-content">')
    p2 = page.find(b"<p>", page.find(b"</p>", start))
    dot = page.find(b". ", p2)
    if start < 0 or p2 < 0 or dot < 0 or dot > page.find(b"</p>", p2):
        dot = page.find(b" ", p2)
    page = page[: dot + 1] + b" " + BAD_BYTES + page[dot + 1 :]
    side = page.find(b"Ten places to see")
    if side > 0:
        page = page[:side] + BAD_BYTES + b" " + page[side:]
    return page
