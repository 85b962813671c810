"""How the news sitemaps are cut into files: one layout per ``ReplicaConfig.sitemap_layout``.

Spec §7 knows the index and ten ``sitemap_news<N>.xml`` files, not how articles are spread over
them, so a crawler must not depend on it. Every layout lists each linked (non-orphan) article
exactly once per day; an entry's ``lastmod`` is its ``modified_at`` whatever the layout, and
moves only when the article is edited.

- ``default``: ten files ``sitemap_news0.xml`` … ``sitemap_news9.xml``, the archive newest
  first cut into ten equal parts (so every file's share grows, and its content shifts, daily).
- ``rolling``: files of ``sitemap_chunk`` entries, newest first, ``sitemap_news0.xml`` holding
  the newest; the number of files grows with the archive and each new article pushes one entry
  of every file into the next.
- ``monthly`` / ``daily``: one file per Moscow publication month / day, named by it
  (``sitemap_news_2026-10.xml``, ``sitemap_news_2026-10-07.xml``), newest file first, entries
  newest first; only the newest file gains entries, an edit moves a lastmod inside its file.
- ``shuffle``: each day 8-12 files with names that change every day
  (``sitemap_<token>_<n>.xml``); every entry lands in a file picked by a hash of (day, id), in
  an order that is another such hash, so entries move between files and reorder overnight.

``sitemap_no_lastmod`` drops ``lastmod`` from a seeded share of entries (picked by article id,
so the same entries lack it every day, in every layout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from replica.config import ReplicaConfig
from replica.corpus import MSK, SiteState, fraction, mix

DEFAULT_FILES = 10
SHUFFLE_FILES = (8, 12)
"""Fewest and most files of the ``shuffle`` layout (chosen per day)."""


@dataclass(frozen=True, slots=True)
class SitemapFile:
    """One news sitemap: its file name under ``/sitemap/`` and its entries in file order."""

    name: str
    entries: tuple[int, ...]
    """Archive indices."""


def layout_files(state: SiteState, config: ReplicaConfig) -> list[SitemapFile]:
    """The news sitemaps of ``state`` under ``config.sitemap_layout``, in index order."""
    builders: dict[str, Callable[[SiteState, ReplicaConfig], list[SitemapFile]]] = {
        "default": _default,
        "rolling": _rolling,
        "monthly": lambda s, _c: _by_date(s, "%Y-%m"),
        "daily": lambda s, _c: _by_date(s, "%Y-%m-%d"),
        "shuffle": _shuffle,
    }
    return builders[config.sitemap_layout](state, config)


def shows_lastmod(seed: int, article_id: int, share_without: float) -> bool:
    """Whether the sitemap entry of ``article_id`` carries ``lastmod``."""
    return share_without <= 0 or fraction(seed, article_id, "sitemap-no-lastmod") >= share_without


def _news_chunks(entries: list[int], per: int, count: int) -> list[SitemapFile]:
    """``count`` files ``sitemap_news<n>.xml`` of ``per`` entries each (the last ones short)."""
    return [
        SitemapFile(f"sitemap_news{n}.xml", tuple(entries[n * per : (n + 1) * per]))
        for n in range(count)
    ]


def _default(state: SiteState, _config: ReplicaConfig) -> list[SitemapFile]:
    linked = state.linked
    per = -(-len(linked) // DEFAULT_FILES) if linked else 0
    return _news_chunks(linked, per, DEFAULT_FILES)


def _rolling(state: SiteState, config: ReplicaConfig) -> list[SitemapFile]:
    linked = state.linked
    per = config.sitemap_chunk
    return _news_chunks(linked, per, max(1, -(-len(linked) // per)))


def _by_date(state: SiteState, period: str) -> list[SitemapFile]:
    files: dict[str, list[int]] = {}
    for i in state.linked:
        when = datetime.fromtimestamp(state.articles[i].published, MSK)
        files.setdefault(when.strftime(period), []).append(i)
    ordered = sorted(files.items(), reverse=True)
    return [SitemapFile(f"sitemap_news_{key}.xml", tuple(idx)) for key, idx in ordered]


def _shuffle(state: SiteState, _config: ReplicaConfig) -> list[SitemapFile]:
    seed, day = state.archive.seed, state.day
    low, high = SHUFFLE_FILES
    count = low + mix(seed, "sitemap-shuffle-files", day) % (high - low + 1)
    token = f"{mix(seed, 'sitemap-shuffle-name', day):016x}"[:10]
    files: list[list[int]] = [[] for _ in range(count)]
    for i in state.linked:
        article_id = state.articles[i].id
        files[mix(seed, "sitemap-shuffle-file", day, article_id) % count].append(i)
    for entries in files:
        entries.sort(key=lambda i: mix(seed, "sitemap-shuffle-order", day, state.articles[i].id))
    return [
        SitemapFile(f"sitemap_{token}_{n}.xml", tuple(entries)) for n, entries in enumerate(files)
    ]
