"""Every default and site constant of the replica in one place, and its validated config.

``ReplicaConfig`` is a frozen dataclass; the CLI (``replica.__main__``) and in-process users
build one and hand it to ``replica.server``. Site constants (sections, themes, marks, the
start of the id and time lines) follow ``/work/shared/tass-site.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ARTICLES = 3000
DEFAULT_SEED = 7
DEFAULT_START_DATE = date(2026, 10, 7)
DEFAULT_SLOW_MS = 1500
DEFAULT_SITEMAP_CHUNK = 300
"""Entries per file of the ``rolling`` sitemap layout (10 files for the default archive)."""

MARKUPS = ("default", "alt")
"""``default``: the markup the spec's [GUESS] parts were first written as (``replica.render``);
``alt``: every [GUESS] part in other plausible shapes (``replica.alt``)."""
SITEMAP_LAYOUTS = ("default", "monthly", "daily", "rolling", "shuffle")
"""How the news sitemaps are cut (``replica.sitemaps``)."""
SWITCHES = ("markup", "sitemap_layout", "sitemap_chunk", "sitemap_no_lastmod")
"""The config fields ``POST /__replica__/switches`` may change while the replica runs."""

ARTICLES_PER_DAY = 200
"""English items a day; with ``SECONDS_PER_ARTICLE`` spacing that is exactly one day."""
SECONDS_PER_ARTICLE = 86400 // ARTICLES_PER_DAY
NEWEST_ID_DAY0 = 2_198_933
"""Id of the newest article at day 0 (spec §9)."""
DAY0_CLOCK_HOUR_MSK = 19
"""The site's "now" at day N is start-date + N days at this Moscow hour."""
MSK_OFFSET = 3 * 3600
CDN = "https://cdn-media.tass.ru"

SECTIONS: dict[str, tuple[int, str]] = {
    "politics": (4954, "Russian Politics & Diplomacy"),
    "world": (4844, "World"),
    "economy": (4845, "Business & Economy"),
    "defense": (4953, "Military & Defense"),
    "science": (4957, "Science & Space"),
    "emergencies": (4992, "Emergencies"),
    "society": (4956, "Society & Culture"),
    "pressreview": (4981, "Press Review"),
    "sports": (4869, "Sports"),
}
SECTION_WEIGHTS: dict[str, int] = {
    "politics": 19,
    "world": 22,
    "economy": 16,
    "defense": 7,
    "science": 5,
    "emergencies": 6,
    "society": 10,
    "pressreview": 3,
    "sports": 12,
}

THEMES: dict[str, tuple[int, str, tuple[str, ...]]] = {
    # slug: (id, display name, home sections whose articles may belong to it)
    "military-operation-in-ukraine": (
        5126,
        "Military operation in Ukraine",
        ("defense", "politics"),
    ),
    "russias-foreign-policy": (4866, "Russia's foreign policy", ("politics", "world")),
    "domestic-policy": (4896, "Domestic policy", ("politics", "society")),
    "conflict-in-syria": (4874, "Conflict in Syria", ("world",)),
    "russian-economy": (4926, "Russian economy", ("economy",)),
    "space-programs": (4939, "Space programs", ("science",)),
    "arctic-development": (5204, "Arctic development", ("economy", "science")),
    "middle-east-tensions": (5310, "Middle East tensions", ("world", "defense")),
}

EVENT_MARKS = (
    "SPIEF-2026",
    "Eastern Economic Forum",
    "BRICS summit",
    "Russia-US relations",
    "Situation in Middle East",
    "Russian Energy Week",
)

RUSSIA_PREFIX = "russia"
ALIAS_PREFIXES = ("news-index", "sport")
"""First segments that are accepted in article URLs and redirected to the primary path."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """What the replica serves. Everything that changes content is part of this."""

    articles: int = DEFAULT_ARTICLES
    """Archive size at day 0."""
    seed: int = DEFAULT_SEED
    day: int = 0
    """Days after the start date; each adds ``ARTICLES_PER_DAY`` articles and some edits."""
    start_date: date = DEFAULT_START_DATE
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    base_url: str | None = None
    """Absolute base for links in feeds, sitemaps and meta; default http://<host>:<port>."""
    crawl_delay: float | None = None
    hostile: bool = True
    fault_503: float = 0.0
    fault_429: float = 0.0
    fault_slow: float = 0.0
    fault_challenge: float = 0.0
    """Share of paths answering a bot-challenge page (200, no content) every time."""
    slow_ms: int = DEFAULT_SLOW_MS
    markup: str = "default"
    """One of ``MARKUPS``."""
    sitemap_layout: str = "default"
    """One of ``SITEMAP_LAYOUTS``."""
    sitemap_chunk: int = DEFAULT_SITEMAP_CHUNK
    """Entries per file of the ``rolling`` layout."""
    sitemap_no_lastmod: float = 0.0
    """Share of articles (seeded by id, the same every day) whose sitemap entry has no lastmod."""

    def __post_init__(self) -> None:
        if self.articles < 1:
            raise ValueError(f"articles must be at least 1, got {self.articles}")
        if self.day < 0:
            raise ValueError(f"day must be 0 or more, got {self.day}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.markup not in MARKUPS:
            raise ValueError(f"markup must be one of {', '.join(MARKUPS)}, got {self.markup!r}")
        if self.sitemap_layout not in SITEMAP_LAYOUTS:
            raise ValueError(
                f"sitemap_layout must be one of {', '.join(SITEMAP_LAYOUTS)}, "
                f"got {self.sitemap_layout!r}"
            )
        if self.sitemap_chunk < 1:
            raise ValueError(f"sitemap_chunk must be at least 1, got {self.sitemap_chunk}")
        for name in (
            "fault_503",
            "fault_429",
            "fault_slow",
            "fault_challenge",
            "sitemap_no_lastmod",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        if self.slow_ms < 0:
            raise ValueError(f"slow_ms must be 0 or more, got {self.slow_ms}")
        if self.crawl_delay is not None and self.crawl_delay < 0:
            raise ValueError(f"crawl_delay must be 0 or more, got {self.crawl_delay}")

    def replace(self, **changes: object) -> ReplicaConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
