"""The cluster now, read-only: what ``scrapy status``, the progress line and the metrics show.

Scrapy-free. ``read_status`` reads the frontier's keys in one ``MULTI`` (so its numbers are of
one instant and add up: ``pending + delayed + leased + done + failed = enqueued``, the run's
tally kept by the scripts themselves), the outcomes of the last runs, and, when a MongoDB
database is given, what the store holds. It writes nothing: not even the stale heartbeats a
worker would clear. ``format_status`` renders it as a table; ``progress_line`` as the one line a
worker logs every interval.

The JSON shape (``scrapy status --json``), every time in seconds or ISO 8601 UTC:

- ``run``: null between runs, else ``id``, ``started_at``, ``age_s``, ``kind`` (``incremental``
  or ``backfill``), ``since``, ``sections``, ``max_articles``, ``seeds`` and ``args``;
- ``queue``: ``pending`` (ready), ``delayed`` (retries waiting), ``queued`` (both), ``leased``,
  ``done`` (acknowledged), ``failed`` (ended as dead letters), ``enqueued`` (every entry
  queued in the run), ``dead_letters`` (kept in Redis, of every run);
- ``counts``: the run's counters the workers add up at each heartbeat (``run/articles``:
  stored, ``run/failures``, ``frontier/responses``...);
- ``budget``: ``rate`` and ``concurrency`` (the workers' ``CRAWL_RATE`` and
  ``CRAWL_CONCURRENCY``), ``rate_now`` (the live workers' responses per second over the last
  minute), ``sent_last_second``, ``at_site`` (requests at the site now), ``paused_for_s``
  (a ``Retry-After`` pause), ``articles_queued`` and ``articles_left`` (against
  ``max_articles``);
- ``eta_s``: what is queued and leased now at ``rate_now`` (null when nothing moves);
- ``feed``: ``waiting`` and ``claimed`` entries of ``<prefix>:start_urls``, ``rejected`` (kept),
  ``last_rejected`` (the newest few, with their reason);
- ``workers``: each heartbeat: ``id``, ``host``, ``pid``, ``mode``, ``run``, ``age_s``,
  ``alive``, ``inflight``, ``ready``, ``unflushed``, ``totals`` and ``rates``;
- ``runs``: the last runs that ended, newest first: ``id``, ``outcome``, ``reasons``,
  ``started_at``, ``ended_at``, ``args``, and from MongoDB ``articles`` and ``failures``;
- ``store``: ``articles``, ``failures``, ``revisions`` (estimated counts), or ``error``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler import defaults
from crawler.frontier.report import PREFIX

if TYPE_CHECKING:
    from pymongo.database import Database
    from redis.asyncio import Redis

    from crawler.frontier.keys import FrontierKeys

REJECTED_SHOWN = 5


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int_map(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


async def read_status(
    client: Redis,
    keys: FrontierKeys,
    *,
    stale_after: float = defaults.TASS_LEASE_SECONDS,
    runs: int = defaults.STATUS_RUNS,
    now: float | None = None,
) -> dict[str, Any]:
    """The cluster's state now, from Redis only (``add_store`` adds MongoDB's part)."""
    k = keys
    async with client.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.get(k.run)
        pipe.zcard(k.pending)
        pipe.zcard(k.delayed)
        pipe.zcard(k.leased)
        pipe.hgetall(k.run_tally)
        pipe.hlen(k.dead)
        pipe.hgetall(k.run_stats)
        pipe.get(k.run_articles)
        pipe.hgetall(k.workers)
        pipe.zrange(k.at_site, 0, -1, withscores=True)
        pipe.zrangebyscore(k.sent, "-inf", "+inf", withscores=True)
        pipe.get(k.pause_until)
        pipe.llen(k.start_urls)
        pipe.zcard(k.feed_claimed)
        pipe.llen(k.feed_rejected)
        pipe.lrange(k.feed_rejected, 0, REJECTED_SHOWN - 1)
        pipe.zrange(k.runs_ended, -max(1, runs), -1, withscores=True)
        pipe.hget(k.pending_plain, "total")
        (
            redis_time, raw_run, pending, delayed, leased, tally, dead, stats, run_articles,
            workers, at_site, sent, pause, waiting, claimed, rejected, last_rejected, ended,
            plain,
        ) = await pipe.execute()  # fmt: skip
    pending = int(pending) + int(plain or 0)
    now = time.time() if now is None else now
    now_ms = int(redis_time[0]) * 1000 + int(redis_time[1]) // 1000
    ended = list(ended) if runs > 0 else []
    outcomes: list[Any] = []
    if ended:
        outcomes = await client.hmget(k.run_outcomes, [member for member, _ in ended])
    tally_counts = _int_map(tally)
    queue = {
        "pending": int(pending),
        "delayed": int(delayed),
        "queued": int(pending) + int(delayed),
        "leased": int(leased),
        "done": tally_counts.get("done", 0),
        "failed": tally_counts.get("failed", 0),
        "enqueued": tally_counts.get("enqueued", 0),
        "dead_letters": int(dead),
    }
    beats = _workers(workers, now, stale_after)
    alive = [w for w in beats if w["alive"]]
    rate_now = round(sum(float(w["rates"].get("responses_per_s", 0)) for w in alive), 3)
    run = _run(raw_run, now)
    budget = _budget(
        alive, at_site=at_site, sent=sent, pause=pause, now_ms=now_ms, run=run,
        run_articles=run_articles, rate_now=rate_now,
    )  # fmt: skip
    remaining = queue["queued"] + queue["leased"]
    return {
        "at": datetime.fromtimestamp(now, UTC).isoformat(),
        "prefix": keys.prefix,
        "run": run,
        "queue": queue,
        "counts": {_text(n).removeprefix(PREFIX): int(v) for n, v in sorted(stats.items())},
        "budget": budget,
        "eta_s": round(remaining / rate_now, 1) if remaining and rate_now > 0 else None,
        "feed": {
            "waiting": int(waiting),
            "claimed": int(claimed),
            "rejected": int(rejected),
            "last_rejected": [json.loads(r) for r in last_rejected],
        },
        "workers": beats,
        "runs": [
            {**json.loads(value), "ended_ms": int(score)}
            for (_, score), value in reversed(list(zip(ended, outcomes, strict=True)))
            if value
        ],
    }


def _run(raw: bytes | None, now: float) -> dict[str, Any] | None:
    if not raw:
        return None
    data = json.loads(raw)
    args: dict[str, Any] = dict(data.get("args") or {})
    started = str(data.get("started_at", ""))
    try:
        age = round(now - datetime.fromisoformat(started).timestamp(), 1)
    except ValueError:
        age = None
    incremental = str(args.get("incremental", "0")) == "1" or args.get("since") in (None, "")
    return {
        "id": str(data.get("id")),
        "started_at": started,
        "age_s": age,
        "kind": "incremental" if incremental else "backfill",
        "since": args.get("since"),
        "sections": args.get("sections") or "all",
        "max_articles": int(args.get("max_articles") or 0),
        "seeds": args.get("seeds", "site"),
        "args": args,
    }


def _workers(raw: Mapping[Any, Any], now: float, stale_after: float) -> list[dict[str, Any]]:
    found = []
    for worker, value in raw.items():
        try:
            beat = json.loads(value)
            age = round(now - float(beat["ts"]), 1)
        except (ValueError, KeyError, TypeError):
            continue  # not a heartbeat this version writes: not shown
        name = _text(worker)
        host, _, pid = name.rpartition(":")
        found.append(
            {
                "id": name,
                "host": beat.get("host", host),
                "pid": beat.get("pid", pid),
                "mode": beat.get("mode"),
                "run": beat.get("run"),
                "age_s": age,
                "alive": age <= stale_after,
                "inflight": int(beat.get("inflight", 0)),
                "ready": int(beat.get("ready", 0)),
                "unflushed": int(beat.get("unflushed", 0)),
                "started_at": beat.get("started_at"),
                "budget": beat.get("budget") or {},
                "totals": beat.get("totals") or {},
                "rates": beat.get("rates") or {},
            }
        )
    return sorted(found, key=lambda w: str(w["id"]))


def _budget(
    alive: list[dict[str, Any]],
    *,
    at_site: list[tuple[Any, float]],
    sent: list[tuple[Any, float]],
    pause: bytes | None,
    now_ms: int,
    run: dict[str, Any] | None,
    run_articles: bytes | None,
    rate_now: float,
) -> dict[str, Any]:
    budgets = [w["budget"] for w in alive if w["budget"]]
    # The requests at the site (``lua.SITE``): each place lapses at its score.
    there = sum(1 for _, lapses in at_site if lapses > now_ms)
    cap = run["max_articles"] if run else 0
    queued = int(run_articles or 0)
    return {
        "rate": max((float(b.get("rate", 0)) for b in budgets), default=None),
        "concurrency": max((int(b.get("concurrency", 0)) for b in budgets), default=None),
        "rate_now": rate_now,
        "sent_last_second": sum(1 for _, t in sent if now_ms - 1000 < t <= now_ms),
        "at_site": there,
        "paused_for_s": max(0.0, (int(pause) - now_ms) / 1000) if pause else 0.0,
        "articles_queued": queued,
        "articles_left": max(0, cap - queued) if cap else None,
    }


def add_store(status: dict[str, Any], db: Database[dict[str, Any]] | None, error: str = "") -> None:
    """What MongoDB holds (``store``), and each listed run's articles and failures from its
    ``runs`` document; ``error`` when MongoDB could not be asked."""
    if db is None:
        status["store"] = {"error": error or "MongoDB not configured"}
        return
    try:
        status["store"] = {
            "articles": db.articles.estimated_document_count(),
            "failures": db.failures.estimated_document_count(),
            "revisions": db.revisions.estimated_document_count(),
        }
        ids = [r["id"] for r in status["runs"] if r.get("id")]
        found = {
            str(doc["_id"]): doc.get("counters") or {}
            for doc in db.runs.find({"_id": {"$in": ids}}, {"counters": 1})
        }
    except Exception as exc:  # a status shows what it can: MongoDB's part says why it is not
        status["store"] = {"error": f"{type(exc).__name__}: {exc}"}
        return
    for run in status["runs"]:
        counters = found.get(str(run.get("id")))
        if counters is not None:
            run["articles"] = int(counters.get("run/articles", 0))
            run["failures"] = int(counters.get("run/failures", 0))


# --- rendering -----------------------------------------------------------------------------


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else ("-" if value is None else str(value))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}/s"


def format_status(status: Mapping[str, Any]) -> str:
    """``status`` as a table for people (``scrapy status``)."""
    lines: list[str] = [f"cluster {status['prefix']!r} at {status['at']}"]
    run, q, b, c = status["run"], status["queue"], status["budget"], status["counts"]
    if run is None:
        lines.append("run      none going")
    else:
        since = run["since"] if run["kind"] == "backfill" else f"marks, else {run['since']}"
        lines.append(
            f"run      {run['id']}: {run['kind']} (since {since}; sections {run['sections']}; "
            f"seeds {run['seeds']}), started {run['started_at']} ({duration(run['age_s'])} ago)"
        )
    lines.append(
        f"queue    {_n(q['pending'])} ready, {_n(q['delayed'])} delayed, {_n(q['leased'])} "
        f"leased, {_n(q['done'])} done, {_n(q['failed'])} failed (of {_n(q['enqueued'])} "
        f"enqueued this run); {_n(q['dead_letters'])} dead letters kept"
    )
    capped = (
        f"; articles {_n(b['articles_queued'])} of {_n(run['max_articles'])} "
        f"({_n(b['articles_left'])} left)"
        if run and run["max_articles"]
        else ""
    )
    paused = f"; paused {b['paused_for_s']:.1f}s (Retry-After)" if b["paused_for_s"] else ""
    lines.append(
        f"budget   {_rate(b['rate_now'])} of {_rate(b['rate'])}, {b['sent_last_second']} sent "
        f"in the last second, {b['at_site']} of {_n(b['concurrency'])} at the site"
        f"{capped}{paused}"
    )
    lines.append(
        f"progress {_n(c.get('run/articles', 0))} articles stored, "
        f"{_n(c.get('run/failures', 0))} failures, {_n(c.get('frontier/responses', 0))} "
        f"responses this run; ETA {duration(status['eta_s'])} (what is queued now, at the "
        "current rate)"
    )
    f = status["feed"]
    lines.append(
        f"feed     {_n(f['waiting'])} waiting on {status['prefix']}:start_urls, "
        f"{_n(f['claimed'])} claimed, {_n(f['rejected'])} rejected"
    )
    for rejected in f["last_rejected"]:
        lines.append(f"           {rejected.get('reason')}: {str(rejected.get('payload'))[:70]!r}")
    workers = status["workers"]
    alive = sum(1 for w in workers if w["alive"])
    gone = len(workers) - alive
    lines.append(f"workers  {alive} alive" + (f", {gone} gone" if gone else ""))
    if workers:
        lines.append(
            f"  {'worker':<28} {'mode':<6} {'beat':>6} {'flight':>6} {'ready':>5} "
            f"{'resp/s':>7} {'art/s':>6} {'responses':>9} {'articles':>8}"
        )
        for w in workers:
            r, t = w["rates"], w["totals"]
            state = duration(w["age_s"]) if w["alive"] else "gone"
            lines.append(
                f"  {w['id'][:28]:<28} {w['mode'] or '-':<6} {state:>6} {w['inflight']:>6} "
                f"{w['ready']:>5} {float(r.get('responses_per_s', 0)):>7.1f} "
                f"{float(r.get('articles_per_s', 0)):>6.1f} {_n(t.get('responses', 0)):>9} "
                f"{_n(t.get('articles', 0)):>8}"
            )
    lines.append(f"runs     last {len(status['runs'])} that ended")
    for r in status["runs"]:
        ended = datetime.fromtimestamp(r["ended_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        counts = (
            f"{_n(r['articles'])} articles, {_n(r['failures'])} failures"
            if "articles" in r
            else "no report in MongoDB"
        )
        lines.append(f"  {r['id']}  ended {ended}  {r.get('outcome') or 'ending'}  {counts}")
        for reason in r.get("reasons") or ():
            lines.append(f"      {reason}")
    store = status.get("store")
    if store is not None:
        if "error" in store:
            lines.append(f"store    MongoDB unavailable: {store['error']}")
        else:
            lines.append(
                f"store    {_n(store['articles'])} articles, {_n(store['failures'])} failures, "
                f"{_n(store['revisions'])} revisions"
            )
    return "\n".join(lines)


def progress_line(status: Mapping[str, Any], worker_id: str) -> str:
    """The cluster-wide progress line a worker logs every interval, with its own share."""
    c, q, b = status["counts"], status["queue"], status["budget"]
    run = status["run"]
    if run is None:
        alive = sum(1 for w in status["workers"] if w["alive"])
        waiting = status["feed"]["waiting"]
        return f"No run going: {alive} workers alive, {waiting} fed URLs waiting"
    head = f"Run {run['id']}"
    me = next((w for w in status["workers"] if w["id"] == worker_id), None)
    share = ""
    if me is not None:
        mine = float(me["rates"].get("responses_per_s", 0))
        part = f", {100 * mine / b['rate_now']:.0f}% of the cluster" if b["rate_now"] else ""
        share = (
            f"; this worker: {_n(me['totals'].get('responses', 0))} fetched, "
            f"{_n(me['totals'].get('articles', 0))} stored ({mine:.1f}/s{part})"
        )
    return (
        f"{head}: cluster fetched {_n(c.get('frontier/responses', 0))}, stored "
        f"{_n(c.get('run/articles', 0))}, failed {_n(c.get('run/failures', 0))} "
        f"({_rate(b['rate_now'])} of {_rate(b['rate'])} budget); queue {_n(q['queued'])} "
        f"queued, {_n(q['leased'])} leased, {_n(q['done'] + q['failed'])} done; "
        f"ETA {duration(status['eta_s'])}{share}"
    )
