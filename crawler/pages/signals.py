"""Signals: every source of an article field, ranked, cross-checked and recorded.

A page object (and the feed hints, ``crawler.pages.hints``) answers each field from one or more
*signals*; ``resolve`` keeps the strongest answer, counts the others that disagree with it, and
names the signal that won. The order, strongest first (``SIGNALS``):

- ``url``: ``link`` (``link rel=canonical``), ``meta`` (``og:url``), ``ld``
  (``mainEntityOfPage``), ``request`` (the URL asked for).
- ``kind``: ``ld`` (an ``ImageGallery``), ``structure`` (a container of photo slides),
  ``class`` (a slider class), ``page`` (the root template).
- ``title``: ``ld`` (``headline``), ``meta`` (``og:title``), ``api``, ``rss``, ``page`` (the
  root's ``h1``), ``head`` (``<title>``).
- ``lead``: ``page`` (the lead element), ``api``, ``rss``, ``ld`` and ``meta`` (descriptions
  that are not the body's opening).
- ``body``, ``dateline``, ``related``: ``page`` (``div.text-content``), ``structure`` (the
  root's largest run of paragraphs).
- ``published_at``: ``ld``, ``meta`` (``article:published_time``), ``api``, ``rss``, ``page``
  (``dateformat[time]``). ``modified_at``: ``ld``, ``meta`` (``article:modified_time``).
- ``tags``: ``page`` (``div.tags__list a.tags__item``), ``structure`` (links to tag and theme
  pages).
- ``mark``: ``api``, ``rss`` (a category that is no section's name), ``structure`` (the label
  between the header's top and the headline), ``class`` (a ``mark``/``label`` class before
  the headline).
- ``images``: ``structure`` (the article's own photos, ``crawler.pages.photos``), ``ld``,
  ``meta`` (``og:image``), ``api``.
- ``caption`` (of the first photo): ``block``, ``next``, ``alt``.

The rule behind the order: what the page states about itself in machine-readable form (JSON-LD,
meta) beats what a feed said about it earlier, which beats what is read from the page's layout;
a [SEEN] element beats a structural rule, which beats a guessed class name. The lead is the
exception: its [SEEN] element is the standfirst itself, while the head's descriptions are often
the body's opening. An answer of ``None`` is a signal saying "the article has none" (the API's
empty mark, an empty lead element); a signal that finds nothing gives no answer at all.

``Resolved.signal`` is the provenance stored with the article (``ArticleItem.extracted``);
``counts`` are the run's extraction counters (``tass/extract/…``) that the drift alarm reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

SIGNALS: dict[str, tuple[str, ...]] = {
    "url": ("link", "meta", "ld", "request"),
    "kind": ("ld", "structure", "class", "page"),
    "title": ("ld", "meta", "api", "rss", "page", "head"),
    "lead": ("page", "api", "rss", "ld", "meta"),
    "body": ("page", "structure"),
    "dateline": ("page", "structure"),
    "published_at": ("ld", "meta", "api", "rss", "page"),
    "modified_at": ("ld", "meta"),
    "tags": ("page", "structure"),
    "mark": ("api", "rss", "structure", "class"),
    "images": ("structure", "ld", "meta", "api"),
    "caption": ("block", "next", "alt"),
    "related": ("page", "structure"),
}
"""Per field, its signals, strongest first (the module docstring says why)."""

FIELDS = tuple(SIGNALS)
COUNTER_PREFIX = "tass/extract/"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one signal says of a field: a value, or None for "the article has none"."""

    signal: str
    value: Any


@dataclass(frozen=True, slots=True)
class Resolved:
    """One field after the signals were weighed."""

    value: Any
    signal: str | None
    """The signal whose answer was kept; None when no signal answered."""
    answered: tuple[str, ...] = ()
    """The signals that gave a value (not "none")."""
    disagreed: tuple[str, ...] = ()
    """The signals whose answer differs from the kept one."""


def empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


_QUOTES = str.maketrans({"“": '"', "”": '"', "«": '"', "»": '"', "’": "'", "‘": "'", "–": "-"})
_ELLIPSIS_RE = re.compile(r"(?:\.\.\.|…)$")


def _norm_text(value: str) -> str:
    text = unicodedata.normalize("NFKC", value).translate(_QUOTES).replace("—", "-")
    return " ".join(text.split()).casefold()  # whitespace collapsed (crawler.text.clean_text)


def same_text(a: str, b: str) -> bool:
    """Equal texts up to case, spacing and quotes; a text cut with an ellipsis is the same as
    a text it begins."""
    x, y = _norm_text(a), _norm_text(b)
    if x == y:
        return True
    for cut, whole in ((x, y), (y, x)):
        if _ELLIPSIS_RE.search(cut):
            stem = _ELLIPSIS_RE.sub("", cut).rstrip(" .,;:")
            if stem and whole.startswith(stem):
                return True
    return False


def _photo_key(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return "/".join(path.split("/")[-2:]).lower()


def same(field: str, a: Any, b: Any) -> bool:
    """Whether two answers for ``field`` agree (``b`` against the kept ``a``)."""
    if empty(a) or empty(b):
        return empty(a) and empty(b)
    if a == b:
        return True  # what agrees exactly agrees under every rule below (no normalising)
    if field == "kind":
        return "gallery" in (a, b)  # a gallery is its template's refinement
    if isinstance(a, datetime) and isinstance(b, datetime):
        return abs((a - b).total_seconds()) < 1
    if field == "images":
        return {_photo_key(i["url"]) for i in b} <= {_photo_key(i["url"]) for i in a}
    if field == "tags":
        return {_norm_text(t) for t in a} == {_norm_text(t) for t in b}
    if field == "related":
        return [r["id"] for r in a] == [r["id"] for r in b]
    if isinstance(a, str) and isinstance(b, str):
        return same_text(a, b)
    return bool(a == b)


def resolve(field: str, answers: Iterable[Answer]) -> Resolved:
    """The strongest answer for ``field``, and who else answered or disagreed."""
    order = SIGNALS[field]
    ranked = sorted((a for a in answers if a.signal in order), key=lambda a: order.index(a.signal))
    if not ranked:
        return Resolved(None, None)
    kept = ranked[0]
    answered = tuple(dict.fromkeys(a.signal for a in ranked if not empty(a.value)))
    disagreed = tuple(
        dict.fromkeys(a.signal for a in ranked[1:] if not same(field, kept.value, a.value))
    )
    return Resolved(kept.value, kept.signal, answered, disagreed)


def provenance(fields: Mapping[str, Resolved]) -> dict[str, str]:
    """Field → the signal kept, for every field some signal answered (stored with the article)."""
    return {name: r.signal for name, r in fields.items() if r.signal is not None}


FEED_SIGNALS = ("api", "rss")
"""Signals that come from a feed's hint, not from the page: a share of them is taken over the
articles that had that feed's hint."""


def counts(fields: Mapping[str, Resolved], feeds: Iterable[str] = ()) -> dict[str, int]:
    """The run counters of one extracted article (keys under ``tass/extract/``):
    ``articles``; ``source/<s>`` for each feed whose hint it had (``feeds``); per field
    ``<f>/present`` (it has a value), ``<f>/answered`` (some signal gave one),
    ``<f>/signal/<s>`` (signal ``s`` gave one), ``<f>/chosen/<s>`` (``s`` was kept),
    ``<f>/disagree`` and ``<f>/disagree/<s>`` (``s`` disagreed with the kept answer)."""
    out = {f"{COUNTER_PREFIX}articles": 1}
    for feed in feeds:
        out[f"{COUNTER_PREFIX}source/{feed}"] = 1
    for name, r in fields.items():
        key = f"{COUNTER_PREFIX}{name}"
        if not empty(r.value):
            out[f"{key}/present"] = 1
        if r.answered:
            out[f"{key}/answered"] = 1
        for signal in r.answered:
            out[f"{key}/signal/{signal}"] = 1
        if r.signal is not None:
            out[f"{key}/chosen/{r.signal}"] = 1
        if r.disagreed:
            out[f"{key}/disagree"] = 1
        for signal in r.disagreed:
            out[f"{key}/disagree/{signal}"] = 1
    return out
