"""The run outcome: ok, degraded or failed, decided from the run report's counters."""

from __future__ import annotations

import pytest

from crawler.outcome import (
    CONTENT,
    EXIT_DEGRADED,
    EXIT_FAILED,
    EXIT_OK,
    HTTP,
    REFUSED,
    UNREACHABLE,
    OutcomeConfig,
    Verdict,
    decide,
    failure_class,
    failure_counters,
)

CONFIG = OutcomeConfig(failed_share=0.5, degraded_share=0.05, blocked_min_pages=10)


def tally(*failures: tuple[str, str, bool], articles: int = 0, seeds: int = 0) -> dict:
    """A report whose counters are what the scheduler adapter counts for these failures
    (reason, page kind, seed?)."""
    counters: dict[str, int] = {"run/articles": articles, "run/seeds": seeds}
    for reason, kind, seed in failures:
        for key in failure_counters(reason, kind, seed):
            name = key.removeprefix("tass/")
            counters[name] = counters.get(name, 0) + 1
    return {"counters": counters}


@pytest.mark.parametrize(
    ("reason", "cls"),
    [
        ("network:DNSLookupError", UNREACHABLE),
        ("network:ConnectionRefusedError", UNREACHABLE),
        ("truncated", UNREACHABLE),
        ("http_503", UNREACHABLE),
        ("http_429", UNREACHABLE),
        ("http_403", REFUSED),
        ("http_404", HTTP),
        ("bad_xml", CONTENT),
        ("not_a_hub", CONTENT),
        ("missing_field:title", CONTENT),
        ("invalid:body", CONTENT),
        ("too_large", CONTENT),
    ],
)
def test_failure_classes(reason: str, cls: str) -> None:
    assert failure_class(reason) == cls


def test_an_unreachable_site_fails_the_run() -> None:
    seeds = [("network:DNSLookupError", "hub", True)] * 10 + [
        ("network:DNSLookupError", "rss", True),
        ("network:DNSLookupError", "sitemap", True),
    ]
    verdict = decide(tally(*seeds, seeds=12), CONFIG)
    assert verdict.outcome == "failed" and verdict.exit_code == EXIT_FAILED
    assert verdict.reasons[0].startswith("site_unreachable: every seed of the run failed (12 of 12")
    # The same failures as a share of the run's URLs: a second reason.
    assert any(r.startswith("site_failures: 12 of 12") for r in verdict.reasons)


def test_seeds_that_answer_without_their_structure_mean_the_site_is_not_serving_us() -> None:
    seeds = [("not_a_hub", "hub", True)] * 10 + [
        ("bad_xml", "rss", True),
        ("bad_xml", "sitemap", True),
    ]
    verdict = decide(tally(*seeds, seeds=12), CONFIG)
    assert verdict.outcome == "failed"
    assert verdict.reasons[0].startswith("site_not_serving: every seed of the run failed")
    assert "content 12" in verdict.reasons[0]


def test_article_pages_without_articles_fail_the_run_once_there_are_enough() -> None:
    few = tally(*[("missing_field:title", "article", False)] * 9, articles=0, seeds=12)
    assert not any(r.startswith("site_not_serving") for r in decide(few, CONFIG).reasons)
    many = tally(*[("missing_field:title", "article", False)] * 30, articles=20, seeds=12)
    verdict = decide(many, CONFIG)
    assert verdict.outcome == "failed"
    assert "site_not_serving: 30 of 50 (60%) article pages" in verdict.reasons[0]


def test_a_quiet_night_is_ok() -> None:
    verdict = decide(tally(seeds=12), CONFIG)
    assert verdict == Verdict("ok") and verdict.exit_code == EXIT_OK


def test_a_night_that_only_tries_known_bad_urls_again_is_ok() -> None:
    """A second run with nothing new: its only URLs are the hostile pages that failed before
    (seen: 5 of 5 failed made such a run degraded, exit 4). A share of so few is noise."""
    again = [("too_large", "article", False)] * 2 + [("empty_body", "article", False)] * 3
    assert decide(tally(*again, articles=0, seeds=12), CONFIG) == Verdict("ok")
    many = [("http_404", "article", False)] * 10
    assert decide(tally(*many, articles=0, seeds=12), CONFIG).outcome == "degraded"


def test_a_few_hostile_pages_keep_a_run_ok() -> None:
    hostile = [("too_large", "article", False), ("redirect_loop", "article", False)]
    assert decide(tally(*hostile, articles=2000, seeds=12), CONFIG).outcome == "ok"


def test_many_failures_degrade_a_run_and_more_site_failures_fail_it() -> None:
    some = tally(*[("http_404", "article", False)] * 10, articles=100, seeds=12)
    verdict = decide(some, CONFIG)
    assert verdict.outcome == "degraded" and verdict.exit_code == EXIT_DEGRADED
    share = "(TASS_RUN_DEGRADED_SHARE=0.05)"
    assert verdict.reasons == (f"failures: 10 of 110 (9%) URLs failed {share}",)
    down = tally(*[("http_503", "article", False)] * 60, articles=40, seeds=12)
    assert decide(down, CONFIG).reasons[0].startswith("site_failures: 60 of 100 (60%)")


def test_drift_alarms_degrade_a_run_one_reason_each() -> None:
    """The contract with the extraction drift check: report["drift"]["alarms"], a list of
    dicts with at least "field" and "message"; any alarm makes the run degraded."""
    report = tally(articles=100, seeds=12)
    report["drift"] = {"alarms": [], "fields": {}}
    assert decide(report, CONFIG).outcome == "ok"
    report["drift"]["alarms"] = [
        {"field": "lead", "message": "found on 2% of articles, 95% before", "extra": 1},
        {"field": "tags", "message": "found on 0% of articles"},
    ]
    verdict = decide(report, CONFIG)
    assert verdict.outcome == "degraded"
    assert verdict.reasons == (
        "drift: lead: found on 2% of articles, 95% before",
        "drift: tags: found on 0% of articles",
    )


def test_known_reasons_fail_the_run_whatever_the_counters() -> None:
    verdict = decide({"counters": {}}, CONFIG, ["redis_state_lost: the run key vanished"])
    assert verdict == Verdict("failed", ("redis_state_lost: the run key vanished",))


def test_a_verdict_round_trips_through_json() -> None:
    verdict = Verdict("degraded", ("drift: lead: gone",))
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    with pytest.raises(ValueError, match="not an outcome"):
        Verdict("fine")


@pytest.mark.parametrize(
    ("failed", "degraded", "message"),
    [
        (0.0, 0.05, "TASS_RUN_FAILED_SHARE=0.0"),
        (1.5, 0.05, "TASS_RUN_FAILED_SHARE=1.5"),
        (0.5, 0.0, "TASS_RUN_DEGRADED_SHARE=0.0"),
        (0.2, 0.3, "TASS_RUN_DEGRADED_SHARE=0.3 is above TASS_RUN_FAILED_SHARE=0.2"),
    ],
)
def test_the_shares_are_validated_and_named(failed: float, degraded: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        OutcomeConfig(failed_share=failed, degraded_share=degraded)
