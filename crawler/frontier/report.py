"""The run report: written once, by the worker that ends the run, to ``runs`` and the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.mongo import RUNS, MongoConfig

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from crawler.frontier.run import Run

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
    }


def _summary(report: dict[str, Any]) -> str:
    c = report["counters"]
    reasons = ", ".join(f"{k}: {v}" for k, v in report["failures_by_reason"].items()) or "none"
    return (
        f"{c.get('run/articles', 0)} articles, {c.get('run/failures', 0)} failures "
        f"({reasons}), {c.get('frontier/responses', 0)} responses, "
        f"{c.get('frontier/retries', 0)} retries, {c.get('frontier/leases_reaped', 0)} leases "
        f"reaped, in {report['duration_s']:.1f} s "
        f"({report['rates']['articles_per_s']:.1f} articles/s)"
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


async def write_run_report(
    settings: BaseSettings, run: Run, stats: dict[str, int], ended: datetime | None = None
) -> dict[str, Any]:
    """Build the report, store it in ``runs`` (with failures by reason) and summarise it."""
    report = build_report(run, stats, ended or datetime.now(UTC))
    report["failures_by_reason"] = await asyncio.to_thread(
        _store, MongoConfig.from_settings(settings), report
    )
    report["summary"] = _summary(report)
    return report
