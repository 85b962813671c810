"""The Prometheus metrics of one worker, from its stats and the cluster's status. Scrapy-free.

``WorkerCollector`` is a ``prometheus_client`` collector: at each scrape it turns the worker's
own counters (``stats()``: the crawler's stats, every count since the process started) and the
latest cluster status (``status()``: ``crawler.status.read_status``, refreshed by the
extension) into metric families. The extension (``crawler.extensions.metrics``) serves them.

Names follow Prometheus's conventions: prefix ``tass_``, base units, ``_total`` for counters,
labels for the dimensions. Counters are this worker's (sum them over workers); gauges named
``tass_cluster_*``, ``tass_queue_*``, ``tass_run_*`` and ``tass_feed_*`` are the cluster's,
the same from every worker (take ``max``, not ``sum``).

Counters (this worker): ``tass_responses_total{kind}``, ``tass_http_responses_total{status}``,
``tass_articles_stored_total``, ``tass_failures_total{class}``, ``tass_frontier_<name>_total``
(``leased``, ``acked``, ``queued``, ``filtered``, ``retries``, ``dead_letters``,
``leases_reaped``, ``redis_errors``, ``pauses``, ``over_max_articles``, ``known_dropped``),
``tass_store_<name>_total`` (``inserted``, ``updated``, ``unchanged``, ``stale``, ``failures``,
``revisions``, ``batches``, ``retries``, ``errors``, ``spilled``...),
``tass_validate_invalid_total{field}``, ``tass_dedupe_near_duplicates_total``,
``tass_feed_<name>_total`` (``taken``, ``queued``, ``duplicates``), ``tass_feed_rejected_total
{reason}``. Gauges (this worker): ``tass_worker_inflight_requests``,
``tass_worker_ready_leases``. Gauges (the cluster): ``tass_queue_requests{state}`` (``pending``,
``delayed``, ``leased``), ``tass_run_requests{state}`` (``enqueued``, ``done``, ``failed``: the
current run's tally), ``tass_queue_dead_letters``, ``tass_run_active``,
``tass_run_start_timestamp_seconds``, ``tass_run_articles_stored``, ``tass_run_failures``,
``tass_cluster_workers_alive``, ``tass_cluster_responses_per_second``,
``tass_cluster_budget_requests_per_second``, ``tass_cluster_requests_at_site``,
``tass_feed_waiting_entries``, ``tass_feed_rejected_entries``,
``tass_last_run_outcome{outcome}`` (1 for the outcome of the last run that ended),
``tass_last_run_end_timestamp_seconds``, ``tass_cluster_status_age_seconds`` (how old the
status is: it grows while Redis is away).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crawler.outcome import OUTCOMES

FLAT = {
    "frontier": (
        "leased", "acked", "queued", "filtered", "retries", "dead_letters", "leases_reaped",
        "redis_errors", "pauses", "over_max_articles", "known_dropped",
    ),
    "store": (
        "inserted", "updated", "unchanged", "stale", "failures", "revisions", "recovered",
        "conflicts", "batches", "retries", "errors", "spilled", "lost", "spill_replayed",
    ),
    "feed": ("taken", "queued", "duplicates", "claims_returned"),
}  # fmt: skip
"""``tass/<component>/<name>`` counters exported as ``tass_<component>_<name>_total``."""

LABELLED = (
    ("tass_responses", "Responses received, by page kind", "tass/frontier/responses/", "kind"),
    ("tass_http_responses", "HTTP responses, by status", "downloader/response_status_count/",
     "status"),
    ("tass_failures", "Failures recorded, by class", "tass/run/failures/", "class"),
    ("tass_validate_invalid", "Articles refused by validation, by field",
     "tass/validate/invalid/", "field"),
    ("tass_feed_rejected", "Fed payloads refused, by reason", "tass/feed/rejected/", "reason"),
)  # fmt: skip
"""Counters with one label: the last segment of every stats key under the prefix."""

SINGLE = (
    ("tass_articles_stored", "Articles stored (written to MongoDB)", "tass/run/articles"),
    ("tass_dedupe_near_duplicates", "Near-duplicates marked", "tass/dedupe/near_duplicates"),
)


def _counter(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    family = CounterMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def local_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    """This worker's counters."""
    numbers = {k: v for k, v in stats.items() if isinstance(v, int | float)}
    for name, doc, key in SINGLE:
        yield _counter(name, doc, numbers.get(key, 0))
    for component, names in FLAT.items():
        for name in names:
            key = f"tass/{component}/{name}"
            doc = f"Stats counter {key} of this worker"
            yield _counter(f"tass_{component}_{name}", doc, numbers.get(key, 0))
    for name, doc, prefix, label in LABELLED:
        family = CounterMetricFamily(name, doc, labels=[label])
        for key, value in sorted(numbers.items()):
            rest = key.removeprefix(prefix)
            if rest != key and rest and "/" not in rest:
                family.add_metric([rest], value)
        yield family


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def cluster_metrics(status: Mapping[str, Any], now: float) -> Iterator[Metric]:
    """The cluster's gauges (the same from every worker)."""
    q, b, run = status["queue"], status["budget"], status["run"]
    family = GaugeMetricFamily("tass_queue_requests", "Requests in the queue", labels=["state"])
    for state in ("pending", "delayed", "leased"):
        family.add_metric([state], q[state])
    yield family
    family = GaugeMetricFamily(
        "tass_run_requests", "The current run's queue entries, by state", labels=["state"]
    )
    for state in ("enqueued", "done", "failed"):
        family.add_metric([state], q[state])
    yield family
    yield from _gauge("tass_queue_dead_letters", "Dead letters kept", q["dead_letters"])
    yield from _gauge("tass_run_active", "1 while a run is going", 1 if run else 0)
    if run:
        started = datetime.fromisoformat(run["started_at"]).timestamp()
        yield from _gauge("tass_run_start_timestamp_seconds", "When the run began", started)
    counts = status["counts"]
    yield from _gauge(
        "tass_run_articles_stored", "Articles stored in the run", counts.get("run/articles", 0)
    )
    yield from _gauge(
        "tass_run_failures", "Failures recorded in the run", counts.get("run/failures", 0)
    )
    alive = sum(1 for w in status["workers"] if w["alive"])
    yield from _gauge("tass_cluster_workers_alive", "Workers with a fresh heartbeat", alive)
    yield from _gauge("tass_cluster_responses_per_second", "The live workers' rate", b["rate_now"])
    yield from _gauge(
        "tass_cluster_budget_requests_per_second", "CRAWL_RATE of the workers", b["rate"]
    )
    yield from _gauge("tass_cluster_requests_at_site", "Requests at the site now", b["at_site"])
    feed = status["feed"]
    yield from _gauge("tass_feed_waiting_entries", "Entries on start_urls", feed["waiting"])
    yield from _gauge("tass_feed_rejected_entries", "Refused payloads kept", feed["rejected"])
    if status["runs"]:
        last = status["runs"][0]
        family = GaugeMetricFamily(
            "tass_last_run_outcome", "The last ended run's outcome", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            family.add_metric([outcome], 1 if last.get("outcome") == outcome else 0)
        yield family
        yield from _gauge(
            "tass_last_run_end_timestamp_seconds", "When it ended", last["ended_ms"] / 1000
        )
    taken = datetime.fromisoformat(status["at"]).timestamp()
    yield from _gauge("tass_cluster_status_age_seconds", "Age of this status", now - taken)


class WorkerCollector(Collector):
    """The metrics of one worker (module docstring)."""

    def __init__(
        self,
        stats: Callable[[], Mapping[str, Any]],
        status: Callable[[], Mapping[str, Any] | None],
        worker: Callable[[], Mapping[str, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stats = stats
        self._status = status
        self._worker = worker
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from local_metrics(self._stats())
        mine = self._worker()
        yield from _gauge(
            "tass_worker_inflight_requests", "Requests in flight", mine.get("inflight")
        )
        yield from _gauge("tass_worker_ready_leases", "Leases ready", mine.get("ready"))
        status = self._status()
        if status is not None:
            yield from cluster_metrics(status, self._clock())
