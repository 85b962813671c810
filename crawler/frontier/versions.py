"""Change detection per article: what the feeds say of each article's version, against the
version the crawler stored. Scrapy-free; the state changes are ``lua``'s version helpers.

Per article id, Redis keeps one fixed-width record (``keys.versions``, a string read and written
with ``BITFIELD``; 64 bits an id, so the whole id space is covered exactly and the record of id N
sits at bit ``64 N``):

- ``u32`` *stamp*: unix seconds of the stored version: its ``modified_at`` (else
  ``published_at``), or the sitemap ``lastmod`` it was fetched for when that is later;
- ``u16`` *feed*: digest of the listing API (else RSS) item's title and date the stored version
  was fetched with (0: none seen);
- ``u15`` *content*: digest of the stored version's title, lead and body, to tell whether a
  re-check found an edit (0: none);
- ``u1`` *bare*: the article's last sitemap entry had no ``lastmod`` (no feed can announce an
  edit that keeps the title).

An incremental run meets each article through *sightings*: a sitemap entry (``lastmod``), a
listing API item or an RSS item (title and date, as a ``feed_digest``). Each sighting goes to the
frontier as the article request's push mode (``Sighting.mode``); the push script's verdict is

- ``n`` new: the id was never queued (unless the entry is older than the run's window: ``o``);
- ``c`` changed: a ``lastmod`` newer than the stamp, or a feed digest other than the stored one;
- ``s`` a sampled re-check: unchanged, but drawn into this run's random sample (``sampled``);
- ``w`` a window re-check: unchanged, and its stored version is younger than the re-check
  window (``RecheckPlan``: the widened window, or for a *bare* article the fixed one);
- ``u`` unchanged: not fetched.

The record is written only when the article's new version is stored (the frontier's
``item_scraped``, before the request's acknowledgement), so a failed fetch leaves the change
announced for the next run. Two fields are filled in at a sighting, as a baseline, never as a
version: an id known from before these records existed (stamp 0) takes the sighting's
``lastmod`` as its stamp, and a first title sighting (feed 0) its digest, so neither costs a fetch;
and a sitemap entry sets or clears ``bare``.

The re-check (``recheck``) measures how far these signals can be trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SIGHTING_META = "sighting"
"""Meta key of an article request made from a feed entry in an incremental run: the entry's
``Sighting`` as a small dict. It stays in the queued member, so the version write knows what
the fetch was announced as."""

MAX_VERSIONED_ID = 2**26 - 1
"""Highest article id with a record: 64 bits an id in a Redis string of at most 512 MiB
(tass.com's ids are near 2.2 million). A larger id has no record: every sighting of it counts
as changed."""

NEVER = 2**32 - 1
"""A window cut-off no stamp reaches: no window."""


def _digest(parts: list[str], bits: int) -> int:
    raw = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    value = int.from_bytes(raw, "big") & ((1 << bits) - 1)
    return value or 1  # 0 means "none"


def _norm(text: str | None) -> str:
    """A title as a feed's and a page's cleaning would both leave it: case, spacing and
    punctuation do not matter."""
    return "".join(c for c in (text or "").casefold() if c.isalnum())


def feed_digest(title: str | None, date: datetime | int | None) -> int:
    """The 16-bit digest of a listing or RSS item's title and date (0: nothing to digest)."""
    if not title and date is None:
        return 0
    unix = int(date.timestamp()) if isinstance(date, datetime) else int(date or 0)
    return _digest([_norm(title), str(unix)], 16)


def content_digest(title: str, lead: str | None, body: str) -> int:
    """The 15-bit digest of an article version's text."""
    return _digest([title, lead or "", body], 15)


def hint_digest(hint: dict[str, Any] | None) -> int:
    """The feed digest of a merged feed hint (``crawler.pages.hints``): the listing API's item,
    else the RSS item's."""
    for source in ("a", "r"):
        said = (hint or {}).get(source)
        if isinstance(said, dict) and (said.get("t") or said.get("d") is not None):
            date = said.get("d")
            return feed_digest(str(said.get("t") or ""), int(date) if date is not None else None)
    return 0


def sampled(run_id: str, article_id: int, rate: float) -> bool:
    """Whether ``article_id`` is in run ``run_id``'s random re-check sample: the same answer in
    every worker and for every sighting of the article in the run."""
    if rate <= 0:
        return False
    raw = hashlib.blake2b(f"{run_id}:{article_id}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "big") / 2**64 < rate


@dataclass(frozen=True, slots=True)
class RecheckPlan:
    """A run's re-check, fixed when it begins (``recheck.plan``) and stored with its args."""

    rate: float = 0.0
    """Share of the known articles drawn into the random sample."""
    after: int = NEVER
    """Unchanged articles whose stamp is at least this (unix s) are re-checked: the widened
    window (``NEVER``: none)."""
    bare_after: int = NEVER
    """The same for *bare* articles (no ``lastmod`` in their sitemap entry): the fixed window."""
    window_hours: float = 0.0
    """The widened window's width (what ``after`` was computed from), for the report."""

    def to_args(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "after": self.after,
            "bare_after": self.bare_after,
            "window_hours": self.window_hours,
        }

    @classmethod
    def from_args(cls, raw: object) -> RecheckPlan:
        if not isinstance(raw, dict):
            return cls()
        return cls(
            rate=float(raw.get("rate", 0.0)),
            after=int(raw.get("after", NEVER)),
            bare_after=int(raw.get("bare_after", NEVER)),
            window_hours=float(raw.get("window_hours", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one feed entry says of an article's version."""

    lastmod: int = 0
    """The sitemap entry's ``lastmod`` (unix s; 0: none)."""
    digest: int = 0
    """The listing or RSS item's ``feed_digest`` (0: none)."""
    sitemap: bool = False
    """A sitemap entry (it says whether the article has a ``lastmod`` at all)."""
    old: bool = False
    """Older than the run's window: fetched only if known and changed, never as new."""
    sample: bool = False
    """In the run's random re-check sample."""
    after: int = NEVER
    bare_after: int = NEVER

    @classmethod
    def of(
        cls,
        plan: RecheckPlan,
        run_id: str,
        article_id: int,
        *,
        lastmod: datetime | None = None,
        title: str | None = None,
        date: datetime | None = None,
        sitemap: bool = False,
        old: bool = False,
    ) -> Sighting:
        return cls(
            lastmod=int(lastmod.timestamp()) if lastmod is not None else 0,
            digest=feed_digest(title, date) if title is not None else 0,
            sitemap=sitemap,
            old=old,
            sample=sampled(run_id, article_id, plan.rate),
            after=plan.after,
            bare_after=plan.bare_after,
        )

    def to_meta(self) -> dict[str, int]:
        return {
            "l": self.lastmod,
            "d": self.digest,
            "f": (self.sitemap and 1) | (self.old and 2) | (self.sample and 4),
            "w": self.after,
            "b": self.bare_after,
        }

    @classmethod
    def from_meta(cls, raw: object) -> Sighting | None:
        if not isinstance(raw, dict):
            return None
        try:
            flags = int(raw.get("f", 0))
            return cls(
                lastmod=int(raw.get("l", 0)),
                digest=int(raw.get("d", 0)),
                sitemap=bool(flags & 1),
                old=bool(flags & 2),
                sample=bool(flags & 4),
                after=int(raw.get("w", NEVER)),
                bare_after=int(raw.get("b", NEVER)),
            )
        except (TypeError, ValueError):
            return None

    def mode(self) -> str:
        """The push mode the Lua ``sighting_verdict`` reads: ``v,lastmod,digest,flags,after,
        bare_after``."""
        flags = ("m" if self.sitemap else "") + ("o" if self.old else "")
        flags += "s" if self.sample else ""
        fields = [self.lastmod, self.digest, flags or "-", self.after, self.bare_after]
        return "v," + ",".join(str(f) for f in fields)


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A stored article version, for the version write (``lua.record_version``)."""

    article_id: int
    stamp: int
    feed: int
    content: int
    sighting: Sighting | None
    url: str = ""
    """The stored article's URL: a dead letter kept under it (an earlier attempt's) goes."""

    def args(self) -> list[Any]:
        s = self.sighting
        return [
            self.article_id,
            self.stamp,
            self.feed,
            self.content,
            s.lastmod if s else 0,
            s.digest if s else 0,
            "-" if s is None else ("s" if s.sample else "r"),
            self.url,
        ]

    @classmethod
    def of(
        cls,
        article_id: int,
        *,
        url: str = "",
        title: str,
        lead: str | None,
        body: str,
        modified_at: datetime | None,
        published_at: datetime | None,
        hint: object,
        sighting_meta: object,
    ) -> VersionRecord:
        sighting = Sighting.from_meta(sighting_meta)
        when = modified_at or published_at
        stamp = int(when.timestamp()) if when is not None else 0
        if sighting is not None:
            stamp = max(stamp, sighting.lastmod)
        merged = hint if isinstance(hint, dict) else _json_dict(hint)
        return cls(
            article_id,
            max(0, min(stamp, NEVER)),
            hint_digest(merged) or (sighting.digest if sighting else 0),
            content_digest(title, lead, body),
            sighting,
            url,
        )


def _json_dict(raw: object) -> dict[str, Any] | None:
    if isinstance(raw, bytes | str) and raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None
