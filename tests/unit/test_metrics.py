"""The worker's Prometheus metrics (``crawler.metrics``), as a scrape parses them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crawler.metrics import WorkerCollector

STATUS = {
    "at": "2026-12-01T22:00:00+00:00",
    "run": {"id": "r1", "started_at": "2026-12-01T21:00:00+00:00"},
    "queue": {"pending": 5, "delayed": 1, "leased": 2, "enqueued": 20, "done": 11, "failed": 1,
              "dead_letters": 3},
    "counts": {"run/articles": 9, "run/failures": 1},
    "budget": {"rate_now": 1.5, "rate": 2.0, "at_site": 2},
    "feed": {"waiting": 4, "rejected": 1},
    "workers": [{"alive": True}, {"alive": False}],
    "runs": [{"outcome": "degraded", "ended_ms": 1_764_000_000_000}],
}  # fmt: skip


def scrape(stats, status) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    worker = {"inflight": 3, "ready": 1}
    collector = WorkerCollector(
        lambda: stats, lambda: status, lambda: worker, clock=lambda: 1_796_162_410.0
    )
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_workers_counters_and_the_clusters_gauges_are_scraped() -> None:
    stats = {
        "tass/run/articles": 9,
        "tass/frontier/leased": 30,
        "tass/frontier/responses": 25,
        "tass/frontier/responses/article": 20,
        "tass/frontier/responses/hub": 5,
        "tass/run/failures/unreachable": 1,
        "tass/run/failures/article/unreachable": 1,  # by kind and class: not a class
        "downloader/response_status_count/200": 24,
        "tass/store/inserted": 9,
        "tass/feed/rejected/not_site_url": 1,
        "tass/run/outcome": "ok",  # not a number: not a metric
    }
    got = scrape(stats, STATUS)
    assert got[("tass_articles_stored_total", ())] == 9
    assert got[("tass_frontier_leased_total", ())] == 30
    assert got[("tass_responses_total", (("kind", "article"),))] == 20
    assert got[("tass_responses_total", (("kind", "hub"),))] == 5
    assert got[("tass_failures_total", (("class", "unreachable"),))] == 1
    assert ("tass_failures_total", (("class", "article/unreachable"),)) not in got
    assert got[("tass_http_responses_total", (("status", "200"),))] == 24
    assert got[("tass_store_inserted_total", ())] == 9
    assert got[("tass_feed_rejected_total", (("reason", "not_site_url"),))] == 1
    assert got[("tass_worker_inflight_requests", ())] == 3
    assert got[("tass_queue_requests", (("state", "pending"),))] == 5
    assert got[("tass_run_requests", (("state", "done"),))] == 11
    assert got[("tass_cluster_workers_alive", ())] == 1
    assert got[("tass_last_run_outcome", (("outcome", "degraded"),))] == 1
    assert got[("tass_last_run_outcome", (("outcome", "ok"),))] == 0
    assert got[("tass_cluster_status_age_seconds", ())] == 10
    assert got[("tass_run_start_timestamp_seconds", ())] == 1_796_158_800
    counters = [name for name, _ in got if name.endswith("_total")]
    assert counters and all(name.startswith("tass_") for name, _ in got)


def test_without_a_cluster_status_the_workers_own_metrics_are_served() -> None:
    got = scrape({"tass/run/articles": 2}, None)
    assert got[("tass_articles_stored_total", ())] == 2
    assert not [name for name, _ in got if name.startswith(("tass_queue", "tass_cluster"))]
