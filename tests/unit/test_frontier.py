"""The frontier's pieces against a real Redis: JSON requests, dedupe, run coordination."""

from __future__ import annotations

import json

import pytest
from scrapy import Request
from scrapy.http import JsonRequest
from scrapy.utils.test import get_crawler

from crawler.frontier import serializer
from crawler.frontier.dupefilter import TassDupeFilter
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.run import RunCoordinator
from crawler.spiders.tass import TassSpider


def test_serializer_round_trips_a_json_request_without_pickle() -> None:
    crawler = get_crawler(TassSpider)
    spider = TassSpider.from_crawler(crawler)
    request = JsonRequest(
        "https://tass.com/userApi/categoryNewsList",
        data={"sectionId": 4953, "limit": 20},
        callback=spider.parse_listing,
        errback=spider.on_error,
        meta={"kind": "listing", "section_id": 4953, "exclude": [1, 3]},
        priority=50,
    )
    encoded = serializer.dumps(request.to_dict(spider=spider))
    assert b"pickle" not in encoded and json.loads(encoded)["callback"] == "parse_listing"
    restored = Request.from_dict(serializer.loads(encoded), spider=spider)
    assert isinstance(restored, JsonRequest)
    assert restored.body == request.body and restored.meta == request.meta
    assert restored.headers.to_unicode_dict() == request.headers.to_unicode_dict()
    assert restored.callback == spider.parse_listing and restored.priority == 50


def test_serializer_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="cannot queue"):
        serializer.dumps({"meta": {"x": object()}})
    with pytest.raises(ValueError, match="JSON object"):
        serializer.loads(b"[1]")


def make_filter(redis_client, key_prefix: str, max_articles: int = 0) -> TassDupeFilter:
    crawler = get_crawler(TassSpider)
    crawler.spider = TassSpider.from_crawler(crawler)
    return TassDupeFilter(redis_client, FrontierKeys(key_prefix), crawler, max_articles)


def article(url: str, article_id: int) -> Request:
    return Request(url, meta={"article_id": article_id})


def test_articles_are_seen_by_id_and_hubs_per_run(redis_client, key_prefix) -> None:
    df = make_filter(redis_client, key_prefix)
    assert not df.request_seen(article("https://tass.com/politics/2150013", 2150013))
    # The same id under another section is the same article.
    assert df.request_seen(article("https://tass.com/world/2150013", 2150013))
    hub = Request("https://tass.com/politics")
    assert not df.request_seen(hub)
    assert df.request_seen(Request("https://tass.com/politics"))
    keys = FrontierKeys(key_prefix)
    # The run ends: hubs may be fetched again, articles may not.
    coordinator = RunCoordinator(redis_client, keys)
    run, _ = coordinator.begin({})
    assert coordinator.finish(run)
    assert not df.request_seen(Request("https://tass.com/politics"))
    assert df.request_seen(article("https://tass.com/politics/2150013", 2150013))
    # A failed article is forgotten, so a later run retries it.
    df.forget_article(2150013)
    assert not df.request_seen(article("https://tass.com/politics/2150013", 2150013))


def test_seen_articles_cost_at_most_a_bit_per_id(redis_client, key_prefix) -> None:
    df = make_filter(redis_client, key_prefix)
    for article_id in range(2_000_001, 2_200_001, 2):  # 100,000 articles
        df.request_seen(article(f"https://tass.com/world/{article_id}", article_id))
    size = int(redis_client.strlen(FrontierKeys(key_prefix).seen_articles))
    assert size <= 2_200_001 // 8 + 1
    assert int(redis_client.bitcount(FrontierKeys(key_prefix).seen_articles)) == 100_000


def test_max_articles_caps_new_articles_without_marking_the_rest(redis_client, key_prefix) -> None:
    df = make_filter(redis_client, key_prefix, max_articles=3)
    verdicts = [df.request_seen(article(f"https://tass.com/world/{i}", i)) for i in (1, 3, 5, 7)]
    assert verdicts == [False, False, False, True]
    # Over the cap is not "seen": once the run ends, article 7 is still new.
    coordinator = RunCoordinator(redis_client, FrontierKeys(key_prefix))
    run, _ = coordinator.begin({})
    coordinator.finish(run)
    assert not df.request_seen(article("https://tass.com/world/7", 7))


def test_one_run_at_a_time_seeded_once(redis_client, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)
    a = RunCoordinator(redis_client, keys, worker_id="a")
    b = RunCoordinator(redis_client, keys, worker_id="b")
    run_a, seeds_a = a.begin({"since": "all"})
    run_b, seeds_b = b.begin({"since": "2026-01-01"})
    assert seeds_a and not seeds_b and run_a == run_b
    assert run_b.args == {"since": "all"}
    a.heartbeat(3)
    assert not b.cluster_idle()
    a.heartbeat(0)
    assert b.cluster_idle()
    redis_client.zadd(keys.requests, {b"x": 0})
    assert not b.cluster_idle()
    redis_client.delete(keys.requests)
    assert b.finish(run_b) and not a.finish(run_a)
    assert a.current() is None


def test_stale_heartbeats_of_dead_workers_are_dropped(redis_client, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)
    dead = RunCoordinator(redis_client, keys, worker_id="dead")
    dead.heartbeat(5)
    alive = RunCoordinator(redis_client, keys, worker_id="alive", stale_after=-1)
    assert alive.others_busy() == 0
    assert redis_client.hget(keys.workers, "dead") is None


def test_a_redirect_continues_under_the_claim_of_its_source(redis_client, key_prefix) -> None:
    df = make_filter(redis_client, key_prefix)
    assert not df.request_seen(article("https://tass.com/sport/2150013", 2150013))
    redirected = Request(
        "https://tass.com/sports/2150013", meta={"article_id": 2150013, "redirect_times": 1}
    )
    assert not df.request_seen(redirected)
    assert df.request_seen(article("https://tass.com/sports/2150013", 2150013))
