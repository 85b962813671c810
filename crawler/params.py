"""The crawl's arguments (``-a name=value``), parsed and validated in one place.

A run's parameters travel with the run in Redis (``Run.args``), so every worker of a run uses
the arguments the run was seeded with, whatever it was started with itself.

Without ``since`` a run is *incremental*: it reads every feed (the listing API down to
``TASS_SINCE_DAYS`` back, RSS, every sitemap) and each entry becomes a *sighting* of its article
(``crawler.frontier.versions``): the frontier fetches the article when its id is unknown, when
the entry says it changed after the version stored, or when the run's re-check picks it
(``recheck``: the run's ``RecheckPlan``, fixed when the run begins). With ``since`` (a date, or
``all``) a run is a *backfill* down to that date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from crawler import defaults
from crawler.frontier.versions import RecheckPlan
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
    In an incremental run, how far back the listing feeds are read and how old a sitemap entry
    may be to count as new."""

    sections: tuple[str, ...] = ()
    """Section slugs to crawl; empty means all sections, themes, feeds and sitemaps."""

    max_articles: int = 0
    """Stop queueing new articles after this many in the run (0 = no cap)."""

    incremental: bool = False
    """True when no ``since`` was given: feed entries are sightings, fetched when they say so."""

    recheck: RecheckPlan = field(default_factory=RecheckPlan)
    """The run's re-check (an incremental run's; ``crawler.frontier.recheck``)."""

    seeds: bool = True
    """False (``seeds=none``): the run queues no seeds of the site; it fetches only the URLs
    fed on ``start_urls`` (and what they lead to)."""

    @classmethod
    def from_args(
        cls,
        args: dict[str, Any],
        *,
        default_since_days: int,
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
            recheck=RecheckPlan.from_args(args.get("recheck")),
            seeds=_parse_seeds(args.get("seeds")),
        )

    def to_args(self) -> dict[str, Any]:
        """The arguments that rebuild these parameters exactly (stored with the run)."""
        args: dict[str, Any] = {
            "since": self.since.isoformat() if self.since else "all",
            "sections": ",".join(self.sections),
            "max_articles": str(self.max_articles),
            "incremental": "1" if self.incremental else "0",
            "recheck": self.recheck.to_args(),
        }
        if not self.seeds:
            args["seeds"] = "none"
        return args

    def describe(self) -> str:
        """The run's arguments as a person reads them: ``since=all, sections=world``."""
        parts = [f"since={self.since_text()}"]
        if self.sections:
            parts.append(f"sections={','.join(self.sections)}")
        if self.max_articles:
            parts.append(f"max_articles={self.max_articles}")
        if not self.seeds:
            parts.append("seeds=none")
        return ", ".join(parts)

    def since_text(self) -> str:
        if self.incremental:
            return "none (incremental)"
        return "all" if self.since is None else self.since.date().isoformat()

    def differences(self, explicit: Mapping[str, Any], other: CrawlParams) -> list[str]:
        """The arguments given explicitly (``explicit``: the ``-a`` these parameters came from)
        in which ``other`` (the open run's) differs, as ``name=value (the open run's: value)``;
        arguments not given are not compared (a crawl without arguments joins any run)."""
        found: list[str] = []
        if "since" in explicit and self.since_text() != other.since_text():
            found.append(f"since={self.since_text()} (the open run's: {other.since_text()})")
        if "sections" in explicit and self.sections != other.sections:
            mine, its = ",".join(self.sections) or "all", ",".join(other.sections) or "all"
            found.append(f"sections={mine} (the open run's: {its})")
        if "max_articles" in explicit and self.max_articles != other.max_articles:
            found.append(f"max_articles={self.max_articles} (the open run's: {other.max_articles})")
        if "seeds" in explicit and self.seeds != other.seeds:
            mine, its = ("site" if p.seeds else "none" for p in (self, other))
            found.append(f"seeds={mine} (the open run's: {its})")
        return found

    def in_scope(self, section: str) -> bool:
        """Whether an article whose primary path starts with ``section`` belongs to the run."""
        return not self.sections or section in self.sections

    def recent_enough(self, when: datetime | None) -> bool:
        """Whether an item dated ``when`` is inside the run's window (unknown dates are)."""
        return self.since is None or when is None or when >= self.since


@dataclass(frozen=True, slots=True)
class ParamDefaults:
    """The settings that complete a run's arguments into its parameters (one crawl's)."""

    since_days: int = defaults.TASS_SINCE_DAYS

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        return cls(since_days=settings.getint("TASS_SINCE_DAYS", defaults.TASS_SINCE_DAYS))

    def params(self, args: Mapping[str, Any], now: datetime | None = None) -> CrawlParams:
        """The parameters of a run from its arguments (``-a`` or a run's; ArgumentError); an
        incremental run's ``since`` counts back from ``now`` (default: the present)."""
        return CrawlParams.from_args(dict(args), default_since_days=self.since_days, now=now)


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


def parse_mode(raw: Any) -> str:
    mode = str(raw or "crawl")
    if mode not in MODES:
        raise ArgumentError(f"-a mode={mode!r}: expected one of {', '.join(MODES)}")
    return mode
