"""URLs fed on ``<prefix>:start_urls`` (``crawler.frontier.feed``): payloads as scrapy-redis
users push them, what is refused and why, and the claim/queue scripts against a real Valkey."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from crawler.frontier.codec import DELAY_META, HINTS_META, VIA_META, push_for
from crawler.frontier.counters import Counters
from crawler.frontier.feed import (
    FED_META,
    RESERVED_META,
    FeedEntry,
    FeedIntake,
    FeedQueue,
    FeedRejected,
    fed_kind,
    parse_payload,
)
from crawler.frontier.health import RedisHealth
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.lifecycle import RunScope
from crawler.frontier.queue import Push, RedisFrontier
from crawler.frontier.run import RunCoordinator
from crawler.frontier.versions import SIGHTING_META
from crawler.params import CrawlParams, ParamDefaults
from crawler.urls import SiteUrls
from tests.unit.frontier_helpers import run, spider

SITE = SiteUrls("https://tass.com")


def test_payloads_are_read_as_scrapy_redis_writes_them() -> None:
    assert parse_payload(b"https://tass.com/politics/2150013") == FeedEntry(
        "https://tass.com/politics/2150013"
    )
    assert parse_payload(b"  https://tass.com/world\n") == FeedEntry("https://tass.com/world")
    payload = {"url": "https://tass.com/world/1", "meta": {"note": "asked"}, "method": "get"}
    assert parse_payload(json.dumps(payload).encode()) == FeedEntry(
        "https://tass.com/world/1", {"note": "asked"}
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"two urls https://tass.com/", "not_a_url"),
        (b"", "not_a_url"),
        (b"{not json", "bad_json"),
        (b'["https://tass.com/"]', "bad_json"),
        (b'{"meta": {}}', "no_url"),
        (b'{"url": 5}', "no_url"),
        (b'{"url": "https://tass.com/", "method": "POST"}', "bad_method"),
        (b'{"url": "https://tass.com/", "q": "x"}', "unknown_keys"),
        (b'{"url": "https://tass.com/", "meta": [1]}', "bad_meta"),
        (b'{"url": "https://tass.com/world/1", "meta": {"article_id": 9}}', "reserved_meta"),
        (b"https://tass.com/\xff", "not_utf8"),
        (b"https://tass.com/" + b"a" * 9000, "too_long"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FeedRejected) as caught:
        parse_payload(raw)
    assert caught.value.reason == reason


def test_the_meta_keys_the_frontier_reads_are_reserved() -> None:
    # A payload setting one would make its request a sighting, a page link, a feed hint or a
    # retry's backoff: the frontier's own meta keys (codec, versions) are all refused.
    assert {SIGHTING_META, HINTS_META, VIA_META, DELAY_META, FED_META} <= RESERVED_META
    with pytest.raises(FeedRejected) as caught:
        parse_payload(json.dumps({"url": "https://tass.com/world/1", "meta": {HINTS_META: {}}}))
    assert caught.value.reason == "reserved_meta"


def test_a_json_array_is_refused_as_json_not_as_a_url() -> None:
    with pytest.raises(FeedRejected) as caught:
        parse_payload(b'{"url": ["x"]}')
    assert caught.value.reason == "no_url"


@pytest.mark.parametrize(
    ("url", "canonical", "kind"),
    [
        ("http://www.tass.com/politics/2150013?utm_source=x", "https://tass.com/politics/2150013",
         "article"),
        ("https://tass.com/sport/2150013", "https://tass.com/sports/2150013", "article"),
        ("https://tass.com/politics", "https://tass.com/politics", "hub"),
        ("https://tass.com/military-operation-in-ukraine",
         "https://tass.com/military-operation-in-ukraine", "hub"),
        ("https://tass.com/", "https://tass.com/", "hub"),
        ("https://tass.com/rss/v2.xml", "https://tass.com/rss/v2.xml", "rss"),
        ("https://tass.com/sitemap.xml", "https://tass.com/sitemap.xml", "sitemap_index"),
        ("https://tass.com/sitemap/sitemap_news3.xml", "https://tass.com/sitemap/sitemap_news3.xml",
         "sitemap"),
    ],
)  # fmt: skip
def test_fed_urls_of_the_site_are_classified(url: str, canonical: str, kind: str) -> None:
    assert fed_kind(SITE, url) == (canonical, kind)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.org/politics/2150013", "not_site_url"),
        ("https://tass.com.evil.example/world/1", "not_site_url"),
        ("/politics/2150013", "not_site_url"),
        ("ftp://tass.com/world/1", "not_site_url"),
        ("https://tass.com/img/photo.jpg", "not_site_url"),
        ("https://tass.com/userApi/categoryNewsList", "not_crawlable"),
        ("https://tass.com/today", "not_crawlable"),
    ],
)
def test_fed_urls_that_are_not_pages_the_crawler_reads_are_refused(url: str, reason: str) -> None:
    with pytest.raises(FeedRejected) as caught:
        fed_kind(SITE, url)
    assert caught.value.reason == reason


def test_the_spider_makes_a_fed_article_a_refresh_first_in_the_queue_whatever_the_sections() -> (
    None
):
    s = spider()
    s.enter_run(RunScope("r", CrawlParams(since=None, sections=("politics",))))
    request = s.fed_request(FeedEntry("https://tass.com/world/2150013", {"note": "asked"}))
    assert request.callback == s.parse_article and request.url == "https://tass.com/world/2150013"
    assert request.meta == {
        "kind": "article", "article_id": 2150013, "fed": True, "note": "asked",
    }  # fmt: skip
    ordinary = s.article_request("https://tass.com/politics/2150013", s.run.params)
    assert ordinary is not None and request.priority > ordinary.priority
    push = push_for(request, s, lambda r: b"fp")
    assert push.refresh and push.article_id == 2150013 and push.mode() == "r"
    hub = s.fed_request(FeedEntry("https://tass.com/world"))
    assert hub.callback == s.parse_hub and hub.meta["kind"] == "hub"


def _intake(client, keys: FrontierKeys, counters: Counters, *, worker: bool = False, began=None):
    s = spider()
    return FeedIntake(
        FeedQueue(client, keys),
        worker_id="w1",
        health=RedisHealth(),
        counters=counters,
        claim_ms=60_000,
        build=lambda entry: push_for(s.fed_request(entry), s, lambda r: r.url.encode()),
        may_claim=lambda: True,
        may_begin=lambda: worker,
        begin=began or (lambda: asyncio.sleep(0)),
    )


def test_fed_urls_are_queued_once_each_even_if_stored_and_bad_ones_are_kept_with_a_reason(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    counters = Counters()

    async def scenario(client):
        queue = RedisFrontier(client, keys)
        coordinator = RunCoordinator(client, keys)
        await coordinator.begin({"since": "all"}, [])
        # An article an earlier run stored: its bit is set in the all-time bitmap.
        await client.setbit(keys.seen_articles, 2150013, 1)
        await client.lpush(
            keys.start_urls,
            "https://tass.com/politics/2150013",
            json.dumps({"url": "https://tass.com/world/2150014", "meta": {"note": "x"}}),
            "https://tass.com/politics/2150013",  # the same URL again: fetched once
            "https://example.org/world/1",
            '{"meta": {}}',
        )
        intake = _intake(client, keys, counters)
        assert await intake.step() == 5
        assert await intake.step() == 0
        assert await queue.counts() == (2, 0, 0)
        return await client.zrange(keys.pending, 0, -1)

    pending = run(scenario, redis_url)
    urls = sorted(json.loads(m)["url"] for m in pending)
    assert urls == ["https://tass.com/politics/2150013", "https://tass.com/world/2150014"]
    assert redis_client.llen(keys.start_urls) == 0 and redis_client.zcard(keys.feed_claimed) == 0
    rejected = [json.loads(r) for r in redis_client.lrange(keys.feed_rejected, 0, -1)]
    assert sorted(r["reason"] for r in rejected) == ["no_url", "not_site_url"]
    assert {r["payload"] for r in rejected} == {"https://example.org/world/1", '{"meta": {}}'}
    assert redis_client.hget(keys.run_tally, "enqueued") == b"2"
    deltas = counters.take()
    assert deltas["tass/feed/taken"] == 5 and deltas["tass/feed/queued"] == 2
    assert deltas["tass/feed/duplicates"] == 1 and deltas["tass/feed/rejected"] == 2
    assert deltas["tass/feed/rejected/not_site_url"] == 1


def test_a_worker_of_a_lost_state_queues_no_fed_url_and_its_claims_return(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    counters = Counters()

    async def scenario(client):
        coordinator = RunCoordinator(client, keys)
        await coordinator.begin({"since": "all"}, [])
        joined = coordinator.epoch
        await client.set(keys.epoch, "another")  # Redis lost its state, and a new run began
        await client.lpush(keys.start_urls, "https://tass.com/world/2150014")
        intake = _intake(client, keys, counters)
        intake._epoch = lambda: joined
        assert await intake.step() == 0
        return await RedisFrontier(client, keys).counts()

    assert run(scenario, redis_url) == (0, 0, 0), "nothing of the lost run is queued"
    assert redis_client.zcard(keys.feed_claimed) == 1, "the claim stays, to return at its deadline"
    assert counters.take()["tass/feed/state_lost"] == 1


def test_entries_wait_for_a_run_unless_the_worker_may_begin_one(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    began: list[bool] = []

    async def scenario(client):
        await client.lpush(keys.start_urls, "https://tass.com/world/2150014")
        crawl_mode = _intake(client, keys, Counters())
        assert await crawl_mode.step() == 0, "no run going: a crawl-mode worker leaves them"
        assert await client.llen(keys.start_urls) == 1

        async def begin() -> None:
            began.append(True)
            await RunCoordinator(client, keys).begin({"seeds": "none"}, [])

        standing = _intake(client, keys, Counters(), worker=True, began=begin)
        assert await standing.step() == 1
        return await RedisFrontier(client, keys).counts()

    assert run(scenario, redis_url) == (1, 0, 0)
    assert began == [True]
    assert json.loads(redis_client.get(keys.run))["args"] == {"seeds": "none"}


def test_a_dead_workers_claims_return_to_the_list_and_hold_the_run_open(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        coordinator = RunCoordinator(client, keys)
        run_, _ = await coordinator.begin({"since": "all"}, [])
        await client.lpush(keys.start_urls, "https://tass.com/world/1", "https://tass.com/world/2")
        feed = FeedQueue(client, keys)
        claim = await feed.claim(10, 200, may_begin=False)  # the worker dies holding them
        assert claim.running and len(claim.members) == 2 and claim.returned == 0
        assert await client.llen(keys.start_urls) == 0
        assert await coordinator.finish(run_) is None, "claimed entries hold the run open"
        await asyncio.sleep(0.3)
        again = await feed.claim(1, 60_000, may_begin=False)
        assert again.returned == 2 and len(again.members) == 1
        assert await coordinator.finish(run_) is None, "an entry still waits"
        [member] = again.members
        await feed.feed([Push(b'{"url":"x"}')], [member], [])
        await feed.feed([], (await feed.claim(1, 60_000, may_begin=False)).members, [])
        return await coordinator.finish(run_)

    assert run(scenario, redis_url) is None, "the pushed request is still pending"
    assert redis_client.llen(keys.start_urls) == 0 and redis_client.zcard(keys.feed_claimed) == 0


def test_a_fed_only_run_says_so_and_a_crawl_asking_for_one_does_not_join_a_site_run() -> None:
    defaults = ParamDefaults()
    fed_only = defaults.params({"since": "all", "seeds": "none"})
    site = defaults.params({"since": "all"})
    assert fed_only.describe() == "since=all, seeds=none" and site.describe() == "since=all"
    assert fed_only.differences({"seeds": "none"}, site) == ["seeds=none (the open run's: site)"]
    assert fed_only.differences({"since": "all"}, site) == [], "seeds not given: not compared"


def test_an_abandoned_run_leaves_no_tally(redis_url, key_prefix, redis_client) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        coordinator = RunCoordinator(client, keys)
        seed = Push(b'{"url":"https://tass.com/world"}', fingerprint="hub")
        began, _ = await coordinator.begin({"since": "all"}, [seed])
        assert await client.hget(keys.run_tally, "enqueued") == b"1"
        assert await coordinator.abandon(began.id) is not None

    run(scenario, redis_url)
    assert not redis_client.exists(keys.run_tally)


class ClaimCancelledAsConnectionError(FeedQueue):
    """A feed whose claim, when cancelled in flight, fails with a connection error, as a Redis
    client may answer a cancellation that lands inside a command."""

    in_claim = False

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        if self.in_claim:  # the next one answers, as Redis does
            return await super().claim(*args, **kwargs)
        self.in_claim = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        raise AssertionError("not reached")


def test_the_intake_closes_when_a_cancelled_claim_fails_as_a_connection_error(
    redis_url, key_prefix
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        intake = _intake(client, keys, Counters())
        queue = ClaimCancelledAsConnectionError(client, keys)
        intake.queue = queue
        intake.interval = 0.01
        intake.start()
        while not queue.in_claim:
            await asyncio.sleep(0.01)
        # The loop takes the error for an outage; it stops on its own once closing.
        await asyncio.wait_for(intake.close(), 10)

    run(scenario, redis_url)
