"""What the store holds: articles by section, failures by reason, duplicates, revisions."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database


def store_report(db: Database[dict[str, Any]]) -> dict[str, Any]:
    """Counts from the ``articles``, ``failures`` and ``revisions`` collections."""

    def grouped(collection: str, field: str, match: dict[str, Any] | None = None) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [{"$match": match or {}}]
        pipeline.append({"$group": {"_id": f"${field}", "n": {"$sum": 1}}})
        rows = db[collection].aggregate(pipeline)
        return dict(sorted(((str(r["_id"]), int(r["n"])) for r in rows), key=lambda kv: -kv[1]))

    return {
        "articles": db.articles.count_documents({}),
        "by_section": grouped("articles", "section"),
        "by_kind": grouped("articles", "kind"),
        "duplicates": db.articles.count_documents({"duplicate_of": {"$ne": None}}),
        "revised": db.articles.count_documents({"revision": {"$gt": 1}}),
        "revisions": db.revisions.count_documents({}),
        "failures": db.failures.count_documents({}),
        "failures_by_reason": grouped("failures", "reason"),
        "retries_pending": db.failures.count_documents({"retry": {"$exists": True}}),
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"articles stored: {report['articles']}"
        f" (near-duplicates marked: {report['duplicates']},"
        f" revised: {report['revised']}, revisions kept: {report['revisions']})",
        "by section:",
        *(f"  {name:<32} {n:>7}" for name, n in report["by_section"].items()),
        "by kind:",
        *(f"  {name:<32} {n:>7}" for name, n in report["by_kind"].items()),
        f"failures: {report['failures']} (a retry pending: {report['retries_pending']})",
        *(f"  {name:<32} {n:>7}" for name, n in report["failures_by_reason"].items()),
    ]
    return "\n".join(lines)
