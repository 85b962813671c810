"""The crawl's arguments (``-a name=value``), parsed and validated in one place.

A run's parameters travel with the run in Redis (``Run.args``), so every worker of a run uses
the arguments the run was seeded with, whatever it was started with itself.

Without ``since`` a run is *incremental*: each listing feed is paged down to the high-water
mark its last complete paging reached (minus an overlap, for late-published items such as
press reviews), or ``TASS_SINCE_DAYS`` back for a feed without a mark; each sitemap yields the
entries whose ``lastmod`` moved past its mark (new or edited articles, fetched again); and the
articles of the last ``TASS_RECHECK_HOURS`` of every feed are fetched again to catch edits.
With ``since`` (a date, or ``all``) a run is a *backfill* down to that date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from crawler import defaults
from crawler.urls import SECTION_ALIASES, SECTIONS

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

MODES = ("crawl", "worker")


class ArgumentError(ValueError):
    """A spider argument has a value it cannot take; the message names the argument."""


@dataclass(frozen=True, slots=True)
class CrawlParams:
    """What one run crawls."""

    since: datetime | None
    """Oldest publication time to page back to; None walks the whole archive (``since=all``).
    In an incremental run, the floor for feeds without a mark."""

    sections: tuple[str, ...] = ()
    """Section slugs to crawl; empty means all sections, themes, feeds and sitemaps."""

    max_articles: int = 0
    """Stop queueing new articles after this many in the run (0 = no cap)."""

    incremental: bool = False
    """True when no ``since`` was given: page down to the marks of earlier runs."""

    marks: dict[str, int] = field(default_factory=dict)
    """High-water marks of earlier runs (unix seconds, site clock), by feed key."""

    overlap: timedelta = timedelta(hours=12)
    """How far below a mark an incremental run still looks."""

    recheck: timedelta = timedelta(hours=48)
    """Articles this recent (from a feed's newest item) are fetched again every run."""

    seeds: bool = True
    """False (``seeds=none``): the run queues no seeds of the site; it fetches only the URLs
    fed on ``start_urls`` (and what they lead to)."""

    @classmethod
    def from_args(
        cls,
        args: dict[str, Any],
        *,
        default_since_days: int,
        overlap_hours: float = 12,
        recheck_hours: float = 48,
        now: datetime | None = None,
    ) -> CrawlParams:
        now = now or datetime.now(UTC)
        raw_since = args.get("since")
        incremental = raw_since in (None, "") or str(args.get("incremental", "")) == "1"
        return cls(
            since=_parse_since(raw_since, default_since_days, now),
            sections=_parse_sections(args.get("sections")),
            max_articles=_parse_max(args.get("max_articles")),
            incremental=incremental,
            marks=_parse_marks(args.get("marks")),
            overlap=timedelta(hours=overlap_hours),
            recheck=timedelta(hours=recheck_hours),
            seeds=_parse_seeds(args.get("seeds")),
        )

    def to_args(self) -> dict[str, Any]:
        """The arguments that rebuild these parameters exactly (stored with the run)."""
        args = {
            "since": self.since.isoformat() if self.since else "all",
            "sections": ",".join(self.sections),
            "max_articles": str(self.max_articles),
            "incremental": "1" if self.incremental else "0",
            "marks": dict(self.marks),
        }
        if not self.seeds:
            args["seeds"] = "none"
        return args

    def in_scope(self, section: str) -> bool:
        """Whether an article whose primary path starts with ``section`` belongs to the run."""
        return not self.sections or section in self.sections

    def recent_enough(self, when: datetime | None) -> bool:
        """Whether an item dated ``when`` is inside the run's window (unknown dates are)."""
        return self.since is None or when is None or when >= self.since

    def floor(self, feed: str) -> datetime | None:
        """How far back to page ``feed``: its mark less the overlap, or ``since``."""
        mark = self.marks.get(feed) if self.incremental else None
        if mark is None:
            return self.since
        return datetime.fromtimestamp(mark, UTC) - self.overlap

    def changed_after(self, feed: str) -> datetime | None:
        """For a sitemap in an incremental run: entries modified after this are fetched again
        (None: no mark yet, or a backfill; then ``since`` applies)."""
        mark = self.marks.get(feed) if self.incremental else None
        return None if mark is None else datetime.fromtimestamp(mark, UTC) - self.overlap


@dataclass(frozen=True, slots=True)
class ParamDefaults:
    """The settings that complete a run's arguments into its parameters (one crawl's)."""

    since_days: int = defaults.TASS_SINCE_DAYS
    overlap_hours: float = defaults.TASS_MARK_OVERLAP_HOURS
    recheck_hours: float = defaults.TASS_RECHECK_HOURS

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        return cls(
            since_days=settings.getint("TASS_SINCE_DAYS", defaults.TASS_SINCE_DAYS),
            overlap_hours=settings.getfloat(
                "TASS_MARK_OVERLAP_HOURS", defaults.TASS_MARK_OVERLAP_HOURS
            ),
            recheck_hours=settings.getfloat("TASS_RECHECK_HOURS", defaults.TASS_RECHECK_HOURS),
        )

    def params(self, args: Mapping[str, Any]) -> CrawlParams:
        """The parameters of a run from its arguments (``-a`` or a run's; ArgumentError)."""
        return CrawlParams.from_args(
            dict(args),
            default_since_days=self.since_days,
            overlap_hours=self.overlap_hours,
            recheck_hours=self.recheck_hours,
        )


def _parse_since(raw: Any, default_days: int, now: datetime) -> datetime | None:
    if raw is None or raw == "":
        return now - timedelta(days=default_days)
    text = str(raw).strip()
    if text == "all":
        return None
    try:
        if "T" in text:
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ArgumentError(f"-a since={text!r}: expected YYYY-MM-DD or 'all'") from exc
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _parse_sections(raw: Any) -> tuple[str, ...]:
    if raw is None or str(raw).strip() == "":
        return ()
    chosen: list[str] = []
    for part in str(raw).split(","):
        slug = SECTION_ALIASES.get(part.strip(), part.strip())
        if slug not in SECTIONS:
            known = ", ".join(SECTIONS)
            raise ArgumentError(f"-a sections={raw!r}: unknown section {part!r} (known: {known})")
        if slug not in chosen:
            chosen.append(slug)
    return tuple(chosen)


def _parse_max(raw: Any) -> int:
    if raw is None or str(raw).strip() == "":
        return 0
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise ArgumentError(f"-a max_articles={raw!r}: expected a whole number") from exc
    if value < 0:
        raise ArgumentError(f"-a max_articles={raw!r}: must be >= 0")
    return value


def _parse_seeds(raw: Any) -> bool:
    text = "site" if raw is None else str(raw).strip()
    if text in ("", "site"):
        return True
    if text == "none":
        return False
    raise ArgumentError(f"-a seeds={raw!r}: expected 'site' (the default) or 'none'")


def _parse_marks(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): int(v) for k, v in raw.items()}


def parse_mode(raw: Any) -> str:
    mode = str(raw or "crawl")
    if mode not in MODES:
        raise ArgumentError(f"-a mode={mode!r}: expected one of {', '.join(MODES)}")
    return mode
