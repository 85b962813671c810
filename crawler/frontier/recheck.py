"""The measured re-check: how far the feeds' change signals can be trusted, and what it costs.

The feeds announce most edits (a sitemap ``lastmod`` moves, a listing item's title changes;
``versions``), but nothing promises they announce all. Each incremental run therefore fetches
again some articles the feeds said were unchanged, and counts how many had in fact changed (the
stored text's digest moved: an *unannounced edit*):

- **the sample**: ``TASS_RECHECK_SAMPLE`` articles a run, drawn at random from every known
  article (a share ``sample / known`` of each run's sightings, by a hash of run and id, so the
  same in every worker). It measures the signals whatever the articles' age;
- **the window**: unchanged articles whose stored version is younger than the window (counted
  back from the newest version stored: the site's clock, not the crawler's). It starts
  at 0 (the sample alone). When a run's re-checks find an unannounced edit, the next run's
  window doubles (at least ``TASS_RECHECK_HOURS``, at most ``RECHECK_MAX_FACTOR`` times it); after
  ``RECHECK_CLEAN_RUNS`` runs in a row whose re-checks found none, it halves, and below a quarter
  of ``TASS_RECHECK_HOURS`` it closes (back to the sample alone);
- **bare articles**: an article whose sitemap entry has no ``lastmod`` has no signal for an edit
  that keeps its title, so it is fetched again while its stored version is younger than
  ``TASS_RECHECK_HOURS`` in every run. These fetches (and a sampled bare article's) say nothing
  of the signals' trust (none was given) and do not move the window.

An edit a re-check finds counts as unannounced only if no sighting of the whole run announced
it: a sitemap read after the re-check's fetch may still announce it (``lua.FINISH`` counts at
the run's end).

The run report's ``changes`` section (``change_report``) gives the figures: what the feeds
announced, what the re-checks fetched and found, the trust (the share of re-checked articles
that were unchanged, with a 95% upper bound on the rate of unannounced edits) and the window of
this run and the next. Scrapy-free; the state (``keys.recheck``) is written once a run, by the
worker that ends it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from crawler import defaults
from crawler.frontier.versions import NEVER, RecheckPlan

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PREFIX = "tass/"
CHECKED = ("recheck/sampled", "recheck/window")
"""Counters of re-checked articles the feeds vouched for (their findings move the window)."""
FOUND = ("recheck/sample_edits", "recheck/window_edits")
NEXT_WINDOW = "tass/recheck/next_window_s"
"""The window the run's findings give the next run, in the run's counters (seconds)."""


@dataclass(frozen=True, slots=True)
class RecheckConfig:
    """``TASS_RECHECK_SAMPLE`` and ``TASS_RECHECK_HOURS``, validated."""

    sample: int = defaults.TASS_RECHECK_SAMPLE
    hours: float = defaults.TASS_RECHECK_HOURS

    def __post_init__(self) -> None:
        if self.sample < 0:
            raise ValueError(f"TASS_RECHECK_SAMPLE={self.sample!r}: must be >= 0")
        if not self.hours >= 0:
            raise ValueError(f"TASS_RECHECK_HOURS={self.hours!r}: must be >= 0")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        return cls(
            sample=settings.getint("TASS_RECHECK_SAMPLE", defaults.TASS_RECHECK_SAMPLE),
            hours=settings.getfloat("TASS_RECHECK_HOURS", defaults.TASS_RECHECK_HOURS),
        )


@dataclass(frozen=True, slots=True)
class RecheckState:
    """What the re-checks of earlier runs decided: the window, and the clean runs since."""

    window_hours: float = 0.0
    clean_runs: int = 0
    newest: int = 0
    """The newest version stored (unix s; written by the version writes, ``lua.FLUSH``)."""

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> RecheckState:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            return cls(
                float(fields.get("window_hours", 0)),
                int(fields.get("clean_runs", 0)),
                int(fields.get("newest", 0)),
            )
        except ValueError:
            return cls()

    def to_redis(self) -> list[str]:
        """Field, value, field, value (``HSET``'s ``items``; ``newest`` is not this side's)."""
        return ["window_hours", repr(self.window_hours), "clean_runs", str(self.clean_runs)]


def site_clock(state: RecheckState, now: float | None = None) -> float:
    """What an incremental run counts its windows back from: the newest version stored (the
    site's clock as its feeds show it, whatever the crawler's: a replica in time travel, a
    skewed host), or ``now`` before anything is stored (and never later than ``now``)."""
    now = time.time() if now is None else now
    return float(state.newest) if 0 < state.newest < now else now


def plan(
    config: RecheckConfig, state: RecheckState, known: int, now: float | None = None
) -> RecheckPlan:
    """The re-check of a run beginning ``now``, with ``known`` articles known; the windows
    count back from ``site_clock``."""
    now = site_clock(state, now)
    window = state.window_hours
    return RecheckPlan(
        rate=min(1.0, config.sample / known) if known > 0 else 0.0,
        after=int(now - window * 3600) if window > 0 else NEVER,
        bare_after=int(now - config.hours * 3600) if config.hours > 0 else NEVER,
        window_hours=window,
    )


def advance(config: RecheckConfig, state: RecheckState, checked: int, found: int) -> RecheckState:
    """The state after a run whose re-checks of vouched-for articles fetched ``checked`` and
    found ``found`` unannounced edits (the rule in the module docstring)."""
    base = config.hours
    if found > 0:
        widest = base * defaults.RECHECK_MAX_FACTOR
        return RecheckState(min(max(2 * state.window_hours, base), widest), 0, state.newest)
    if checked == 0:
        return state
    clean = state.clean_runs + 1
    if clean < defaults.RECHECK_CLEAN_RUNS:
        return RecheckState(state.window_hours, clean, state.newest)
    half = state.window_hours / 2
    return RecheckState(half if half >= base / 4 and half > 0 else 0.0, 0, state.newest)


def findings(stats: dict[str, int]) -> tuple[int, int]:
    """(re-checked, unannounced edits found) among vouched-for articles in a run's counters."""
    return (
        sum(stats.get(PREFIX + k, 0) for k in CHECKED),
        sum(stats.get(PREFIX + k, 0) for k in FOUND),
    )


def change_report(counters: dict[str, int], args: dict[str, Any]) -> dict[str, Any]:
    """The run report's ``changes`` section from its counters (``tass/`` taken off) and args."""
    c = counters
    checked = sum(c.get(k, 0) for k in CHECKED)
    found = sum(c.get(k, 0) for k in FOUND)
    window = RecheckPlan.from_args(args.get("recheck")).window_hours
    return {
        "new": c.get("changes/new", 0),
        "changed": c.get("changes/changed", 0),
        "unchanged_sightings": c.get("changes/unchanged", 0),
        "too_old": c.get("changes/too_old", 0),
        "recheck": {
            "sampled": c.get("recheck/sampled", 0),
            "sample_edits": c.get("recheck/sample_edits", 0),
            "window": c.get("recheck/window", 0),
            "window_edits": c.get("recheck/window_edits", 0),
            "bare": c.get("recheck/bare", 0),
            "bare_edits": c.get("recheck/bare_edits", 0),
        },
        "trust": round(1 - found / checked, 4) if checked else None,
        "unannounced_rate_upper95": _upper95(found, checked),
        "window_hours": window,
        "next_window_hours": round(c.get(NEXT_WINDOW.removeprefix(PREFIX), 0) / 3600, 3),
    }


def _upper95(found: int, checked: int) -> float | None:
    """A 95% upper bound on the share of unannounced edits (Wilson score; 3/n when 0 found)."""
    if checked == 0:
        return None
    if found == 0:
        return round(min(1.0, 3 / checked), 4)
    z = 1.96
    p = found / checked
    centre = p + z * z / (2 * checked)
    spread = z * math.sqrt((p * (1 - p) + z * z / (4 * checked)) / checked)
    return round(min(1.0, (centre + spread) / (1 + z * z / checked)), 4)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
