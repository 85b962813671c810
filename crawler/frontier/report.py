"""The run report: written once, by the worker that ends the run, to ``runs`` and the log.

``drift`` compares the run's extraction figures with the previous runs' (``crawler.drift``);
each of its ``alarms`` is logged as a warning. ``changes`` (an incremental run's) says what the
feeds announced and how far their change signals could be trusted (``recheck.change_report``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.drift import DriftConfig, drift_report
from crawler.frontier.recheck import change_report
from crawler.mongo import RUNS, MongoConfig

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from crawler.frontier.run import Run

logger = logging.getLogger(__name__)

PREFIX = "tass/"


def build_report(run: Run, stats: dict[str, int], ended: datetime) -> dict[str, Any]:
    started = datetime.fromisoformat(run.started_at)
    seconds = max((ended - started).total_seconds(), 1e-9)
    counters = {k.removeprefix(PREFIX): v for k, v in sorted(stats.items())}
    responses = counters.get("frontier/responses", 0)
    articles = counters.get("run/articles", 0)
    return {
        "_id": run.id,
        "args": run.args,
        "started_at": started,
        "ended_at": ended,
        "duration_s": round(seconds, 3),
        "counters": counters,
        "rates": {
            "responses_per_s": round(responses / seconds, 3),
            "articles_per_s": round(articles / seconds, 3),
        },
        "changes": change_report(counters, run.args),
    }


def _summary(report: dict[str, Any]) -> str:
    c = report["counters"]
    reasons = ", ".join(f"{k}: {v}" for k, v in report["failures_by_reason"].items()) or "none"
    drift = report.get("drift") or {}
    changes = report["changes"]
    trust = changes["trust"]
    return (
        f"{c.get('run/articles', 0)} articles, {c.get('run/failures', 0)} failures "
        f"({reasons}), {c.get('frontier/responses', 0)} responses, "
        f"{c.get('frontier/retries', 0)} retries, {c.get('frontier/leases_reaped', 0)} leases "
        f"reaped, in {report['duration_s']:.1f} s "
        f"({report['rates']['articles_per_s']:.1f} articles/s), "
        f"{len(drift.get('alarms', []))} drift alarms; feeds announced {changes['new']} new "
        f"and {changes['changed']} changed, re-checks trust "
        f"{'n/a' if trust is None else f'{trust:.1%}'} "
        f"(window {changes['window_hours']:g} h, next {changes['next_window_hours']:g} h)"
    )


def _store(config: MongoConfig, report: dict[str, Any], drift: DriftConfig) -> dict[str, int]:
    with config.open() as db:
        report["drift"] = drift_report(db, report["_id"], report["counters"], drift)
        rows = db.failures.aggregate(
            [
                {"$match": {"last_failed_at": {"$gte": report["started_at"]}}},
                {"$group": {"_id": "$reason", "n": {"$sum": 1}}},
            ]
        )
        by_reason = {str(r["_id"]): int(r["n"]) for r in rows}
        db[RUNS].replace_one({"_id": report["_id"]}, {**report, "failures_by_reason": by_reason},
                             upsert=True)  # fmt: skip
        return by_reason


async def write_run_report(
    settings: BaseSettings,
    run: Run,
    stats: dict[str, int],
    ended: datetime | None = None,
    drift: DriftConfig | None = None,
) -> dict[str, Any]:
    """Build the report, compare its extraction with the previous runs' (``drift``), store it
    in ``runs`` (with failures by reason) and summarise it."""
    report = build_report(run, stats, ended or datetime.now(UTC))
    report["failures_by_reason"] = await asyncio.to_thread(
        _store,
        MongoConfig.from_settings(settings),
        report,
        drift or DriftConfig.from_settings(settings),
    )
    for alarm in report["drift"]["alarms"]:
        logger.warning("Drift alarm in run %s: %s", run.id, alarm["message"])
    report["summary"] = _summary(report)
    return report
