"""The drift alarm: a run's extraction figures, compared with the runs before it.

Every extracted article adds its signal counts to the run's counters (``tass/extract/…``,
``crawler.pages.signals.counts``). From them the run report gets ``report["drift"]``:

- ``articles``: the articles extracted in the run;
- ``sources``: % of the articles that came with a listing API (``api``) or RSS (``rss``) hint;
- ``fields``: per field, ``coverage`` (% of the articles that have it), ``signals`` (for each
  signal, % of the articles with an answer for the field on which it gave one; for the feed
  signals, % of the articles with that feed's hint, so that how articles were found, through
  feeds or links, does not move the figure), ``chosen`` (% of the articles whose value each
  signal gave) and ``disagree`` (% of the articles with an answer on which two signals
  disagreed);
- ``baseline``: the same figures, the median of each over the last ``DRIFT_BASELINE_RUNS``
  earlier runs that extracted at least ``DRIFT_MIN_ARTICLES`` articles and did not fail (kept in
  ``runs``), with their ids; None before there are any;
- ``alarms``: one ``{"field", "kind", "signal", "before", "now", "message"}`` per change of
  ``TASS_DRIFT_THRESHOLD`` percentage points or more against the baseline: a field's coverage
  fell (``coverage``), a signal stopped answering for it (``signal``: the field now comes from
  fallbacks, or from nothing), or its sources disagree more (``disagreement``). A figure is
  compared only where both this run and the baseline had ``DRIFT_MIN_ARTICLES`` articles
  behind it.

The run report logs each alarm as a warning; the run's outcome counts a non-empty list as
``degraded``. The first night after the site changes its markup therefore says so, naming the
fields whose signals changed; once the change makes up most of the baseline (two runs with the
default three), it is the new normal and the alarm stops.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from crawler import defaults
from crawler.pages.signals import FEED_SIGNALS, FIELDS, SIGNALS

if TYPE_CHECKING:
    from pymongo.database import Database
    from scrapy.settings import BaseSettings

PREFIX = "extract/"
"""The extraction counters' prefix in the report's counters (``tass/`` already removed)."""


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """When a change of the extraction figures is an alarm."""

    threshold: float = defaults.TASS_DRIFT_THRESHOLD
    """Percentage points a figure must move against the baseline to raise an alarm."""
    baseline_runs: int = defaults.DRIFT_BASELINE_RUNS
    min_articles: int = defaults.DRIFT_MIN_ARTICLES

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        raw = settings.get("TASS_DRIFT_THRESHOLD", defaults.TASS_DRIFT_THRESHOLD)
        try:
            threshold = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"TASS_DRIFT_THRESHOLD={raw!r}: must be a number") from None
        if not 0 < threshold <= 100:
            raise ValueError(f"TASS_DRIFT_THRESHOLD={raw!r}: must be percentage points in (0, 100]")
        return cls(threshold=threshold)


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def figures(counters: Mapping[str, int]) -> dict[str, Any]:
    """A run's extraction figures from its counters (keys without the ``tass/`` prefix)."""
    articles = int(counters.get(f"{PREFIX}articles", 0))
    hinted = {s: int(counters.get(f"{PREFIX}source/{s}", 0)) for s in FEED_SIGNALS}
    fields: dict[str, Any] = {}
    for name in FIELDS:
        key = f"{PREFIX}{name}"
        answered = int(counters.get(f"{key}/answered", 0))
        signals = {}
        chosen = {}
        for signal in SIGNALS[name]:
            gave = int(counters.get(f"{key}/signal/{signal}", 0))
            kept = int(counters.get(f"{key}/chosen/{signal}", 0))
            if gave:
                signals[signal] = _share(gave, hinted.get(signal, answered))
            if kept:
                chosen[signal] = _share(kept, articles)
        fields[name] = {
            "coverage": _share(int(counters.get(f"{key}/present", 0)), articles),
            "answered": answered,
            "signals": signals,
            "chosen": chosen,
            "disagree": _share(int(counters.get(f"{key}/disagree", 0)), answered),
        }
    sources = {s: _share(n, articles) for s, n in hinted.items()}
    return {"articles": articles, "sources": sources, "fields": fields, "hinted": hinted}


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def baseline(previous: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The median of each figure over earlier runs' figures (a missing signal counts 0)."""
    fields: dict[str, Any] = {}
    for name in FIELDS:
        runs = [p.get("fields", {}).get(name, {}) for p in previous]
        signals = sorted({s for r in runs for s in r.get("signals", {})}, key=SIGNALS[name].index)
        fields[name] = {
            "coverage": _median([r.get("coverage", 0.0) for r in runs]),
            "answered": _count([r.get("answered", 0) for r in runs]),
            "signals": {
                s: _median([r.get("signals", {}).get(s, 0.0) for r in runs]) for s in signals
            },
            "disagree": _median([r.get("disagree", 0.0) for r in runs]),
        }
    return {
        "articles": _count([p.get("articles", 0) for p in previous]),
        "fields": fields,
        "hinted": {
            s: _count([p.get("hinted", {}).get(s, 0) for p in previous]) for s in FEED_SIGNALS
        },
    }


def _count(values: Sequence[int]) -> int:
    return int(statistics.median(values)) if values else 0


def _alarm(name: str, kind: str, signal: str | None, was: float, is_: float) -> dict[str, Any]:
    what = {
        "coverage": "coverage fell",
        "signal": f"signal {signal!r} answers less often",
        "disagreement": "its sources disagree more often",
    }[kind]
    return {
        "field": name,
        "kind": kind,
        "signal": signal,
        "before": was,
        "now": is_,
        "message": f"{name}: {what} ({was:.1f}% in the previous runs, {is_:.1f}% now)",
    }


def alarms(
    now: Mapping[str, Any], before: Mapping[str, Any], config: DriftConfig
) -> list[dict[str, Any]]:
    """Every figure of ``now`` that moved ``config.threshold`` points or more the wrong way,
    among those with ``config.min_articles`` articles behind them in both."""
    out: list[dict[str, Any]] = []
    enough, limit = config.min_articles, config.threshold
    if now.get("articles", 0) < enough or before.get("articles", 0) < enough:
        return out
    for name in FIELDS:
        cur = now["fields"][name]
        old = before["fields"].get(name, {})
        if old.get("coverage", 0.0) - cur["coverage"] >= limit:
            out.append(_alarm(name, "coverage", None, old["coverage"], cur["coverage"]))
        for signal, was in old.get("signals", {}).items():
            feed = signal in FEED_SIGNALS
            behind_now = now["hinted"][signal] if feed else cur["answered"]
            behind_before = before["hinted"].get(signal, 0) if feed else old.get("answered", 0)
            is_ = cur["signals"].get(signal, 0.0)
            if min(behind_now, behind_before) >= enough and was - is_ >= limit:
                out.append(_alarm(name, "signal", signal, was, is_))
        enough_answers = min(cur["answered"], old.get("answered", 0)) >= enough
        if enough_answers and cur["disagree"] - old.get("disagree", 0.0) >= limit:
            out.append(
                _alarm(name, "disagreement", None, old.get("disagree", 0.0), cur["disagree"])
            )
    return out


def previous_figures(
    db: Database[dict[str, Any]], run_id: str, config: DriftConfig
) -> list[tuple[str, dict[str, Any]]]:
    """(id, figures) of the latest earlier runs that qualify as a baseline, newest first."""
    rows = db.runs.find(
        {
            "_id": {"$ne": run_id},
            "drift.articles": {"$gte": config.min_articles},
            "outcome": {"$ne": "failed"},
        },
        {"drift.articles": 1, "drift.fields": 1, "drift.hinted": 1, "ended_at": 1},
    ).sort("ended_at", -1)
    found: list[tuple[str, dict[str, Any]]] = []
    for row in rows.limit(config.baseline_runs):
        drift = row.get("drift") or {}
        kept = {k: drift.get(k) or {} for k in ("fields", "hinted")}
        found.append((str(row["_id"]), {"articles": drift.get("articles", 0), **kept}))
    return found


def drift_report(
    db: Database[dict[str, Any]],
    run_id: str,
    counters: Mapping[str, int],
    config: DriftConfig,
) -> dict[str, Any]:
    """``report["drift"]`` for the run ``run_id`` (module docstring)."""
    current = figures(counters)
    earlier = previous_figures(db, run_id, config)
    report: dict[str, Any] = {**current, "threshold": config.threshold, "baseline": None}
    report["alarms"] = []
    if earlier:
        base = baseline([f for _id, f in earlier])
        report["baseline"] = {"runs": [run for run, _f in earlier], **base}
        report["alarms"] = alarms(current, base, config)
    return report
