"""The run report: built and concluded once, by the worker that ends the run (or that finds
its state lost), then written to ``runs`` and the log.

``check_drift`` compares the run's extraction figures with the previous runs' in ``runs``
(``crawler.drift``), before the outcome is decided: its ``alarms`` make the run ``degraded``,
and each is logged as a warning when the report is stored. When MongoDB cannot answer it in
time the report says so (``drift["unavailable"]``) and raises no alarm. ``changes`` (an
incremental run's) says what the feeds announced and how far their change signals could be
trusted (``recheck.change_report``).

``conclude_run`` is pure: the report of the run's counters (``build_report``) with its outcome
(``crawler.outcome.decide``: ``outcome`` and ``reasons``). Whatever else the report should carry
for the outcome to weigh (the extraction drift check's ``report["drift"]["alarms"]``) must be in
it when ``decide`` runs. ``store_run_report`` writes the
concluded report to ``runs`` (with the run's failures by reason from ``failures``), retried
through a MongoDB outage until ``deadline``, and adds its one-line ``summary``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler import mongo
from crawler.drift import DriftConfig, drift_report
from crawler.frontier.recheck import change_report
from crawler.mongo import RUNS, MongoConfig
from crawler.outcome import OutcomeConfig, Verdict, decide

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from crawler.frontier.run import Run

logger = logging.getLogger(__name__)

PREFIX = "tass/"


def build_report(run: Run, stats: dict[str, int], ended: datetime) -> dict[str, Any]:
    started = datetime.fromisoformat(run.started_at)
    seconds = max((ended - started).total_seconds(), 1e-9)
    counters = counters_of(stats)
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


def counters_of(stats: dict[str, int]) -> dict[str, int]:
    """The report's counters: the run's stats without their ``tass/`` prefix."""
    return {k.removeprefix(PREFIX): v for k, v in sorted(stats.items())}


async def check_drift(
    settings: BaseSettings,
    run: Run,
    stats: dict[str, int],
    config: DriftConfig,
    deadline: Callable[[], float],
) -> dict[str, Any]:
    """``report["drift"]`` for ``run`` (``crawler.drift``), read from ``runs`` until
    ``deadline``."""
    mongo_config = MongoConfig.from_settings(settings)
    counters = counters_of(stats)

    def read() -> dict[str, Any]:
        with mongo_config.open() as db:
            return drift_report(db, run.id, counters, config)

    try:
        return await mongo.retry(read, what="the drift check", deadline=deadline)
    except Exception as exc:  # the report goes on without it, and says so
        logger.warning("Drift check of run %s skipped: %s", run.id, exc)
        return {"alarms": [], "baseline": None, "unavailable": str(exc)[:300]}


def conclude_run(
    settings: BaseSettings,
    run: Run,
    stats: dict[str, int],
    ended: datetime | None = None,
    known: Iterable[str] = (),
    *,
    drift: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Verdict]:
    """The run's report with its ``outcome`` and ``reasons`` (``known``: reasons the caller
    already has for a failed run; ``drift``: ``check_drift``'s answer), and the verdict."""
    report = build_report(run, stats, ended or datetime.now(UTC))
    if drift is not None:
        report["drift"] = drift
    verdict = decide(report, OutcomeConfig.from_settings(settings), known)
    report.update(verdict.to_dict())
    return report, verdict


def _summary(report: dict[str, Any]) -> str:
    c = report["counters"]
    reasons = ", ".join(f"{k}: {v}" for k, v in report["failures_by_reason"].items()) or "none"
    drift = report.get("drift") or {}
    changes = report["changes"]
    trust = changes["trust"]
    return (
        f"{report['outcome']}: "
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


def _store(config: MongoConfig, report: dict[str, Any]) -> dict[str, int]:
    with config.open() as db:
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


async def store_run_report(
    settings: BaseSettings, report: dict[str, Any], deadline: Callable[[], float]
) -> dict[str, Any]:
    """Store the concluded ``report`` in ``runs`` (with failures by reason) and summarise it."""
    config = MongoConfig.from_settings(settings)
    report["failures_by_reason"] = await mongo.retry(
        lambda: _store(config, report), what="the run report", deadline=deadline
    )
    for alarm in (report.get("drift") or {}).get("alarms", []):
        logger.warning("Drift alarm in run %s: %s", report["_id"], alarm["message"])
    report["summary"] = _summary(report)
    return report
