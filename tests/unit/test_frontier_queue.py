"""The shared queue against a real Redis: dedupe, leases, acks, retries, budget, dead letters."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

import pytest
from scrapy import Request
from scrapy.http import JsonRequest

from crawler.frontier.codec import VIA_META, decode_request, encode_request, push_for
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Budget, DeadLetter, Push, RedisFrontier
from tests.unit.frontier_helpers import enter_site, leave_site, reserve_sends, run, spider

FAST = Budget(interval_ms=0.1, per_second=10_000, concurrency=1000, lease_ms=60_000)


def member(url: str, priority: int = 0) -> bytes:
    return json.dumps({"url": url, "priority": priority}, sort_keys=True).encode()


def article(article_id: int, priority: int = 100) -> Push:
    return Push(member(f"https://tass.com/world/{article_id}", priority), priority, article_id)


def test_codec_round_trips_a_json_request_without_pickle() -> None:
    s = spider()
    request = JsonRequest(
        "https://tass.com/userApi/categoryNewsList",
        data={"sectionId": 4953, "limit": 20},
        callback=s.parse_listing,
        errback=s.on_error,
        meta={"kind": "listing", "section_id": 4953, "exclude": [1, 3]},
        priority=50,
    )
    encoded = encode_request(request, s)
    assert encoded == encode_request(request, s), "the same request, the same member"
    assert b"pickle" not in encoded and json.loads(encoded)["callback"] == "parse_listing"
    restored = decode_request(encoded, s)
    assert isinstance(restored, JsonRequest)
    assert restored.body == request.body and restored.meta == request.meta
    assert restored.headers.to_unicode_dict() == request.headers.to_unicode_dict()
    assert restored.callback == s.parse_listing and restored.priority == 50
    plain = s.article_request("https://tass.com/politics/2150013", s.run.params)
    assert plain is not None and len(encode_request(plain, s)) < 200


def test_codec_refuses_what_json_cannot_hold() -> None:
    s = spider()
    with pytest.raises(TypeError, match="cannot queue"):
        encode_request(Request("https://tass.com/", meta={"x": object()}), s)
    with pytest.raises(ValueError, match="not a queued request"):
        decode_request(b"[1]", s)


def test_articles_are_deduplicated_by_id_and_hubs_per_run(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        hub = Push(member("https://tass.com/politics"), 40, fingerprint="fp-politics")
        first = await q.flush([article(2150013), article(2150013), hub, hub], [])
        assert (first.queued, first.filtered) == (2, 2)
        # A redirect continues under its source's claim; a retry is not filtered either.
        again = await q.flush([Push(member("https://tass.com/sports/2150013"), 100, 2150013,
                                    unfiltered=True)], [])  # fmt: skip
        assert again.queued == 1
        await client.delete(keys.seen_hubs)  # what ending a run does
        later = await q.flush([article(2150013), hub], [])
        assert (later.queued, later.filtered) == (1, 1)

    run(scenario, redis_url)


def test_seen_articles_cost_a_bit_per_id(redis_url, key_prefix, redis_client) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        ids = range(2_000_001, 2_200_001, 2)  # 100,000 articles
        batch = [article(i) for i in ids]
        for start in range(0, len(batch), 5000):
            await q.flush(batch[start : start + 5000], [])

    run(scenario, redis_url)
    assert int(redis_client.bitcount(keys.seen_articles)) == 100_000
    assert int(redis_client.strlen(keys.seen_articles)) <= 2_200_001 // 8 + 1


def test_max_articles_caps_the_run_without_marking_the_rest(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        result = await q.flush([article(i) for i in (1, 3, 5, 7)], [], max_articles=3)
        assert (result.queued, result.capped) == (3, 1)
        await client.delete(keys.run_articles)
        assert (await q.flush([article(7)], [], max_articles=3)).queued == 1

    run(scenario, redis_url)


def test_links_found_on_pages_are_capped_per_run_without_marking_the_rest(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    via = "https://tass.com/world/9"

    def link(article_id: int) -> Push:
        return Push(member(f"https://tass.com/world/{article_id}"), 100, article_id, via=via)

    def hub_link(slug: str) -> Push:
        return Push(member(f"https://tass.com/{slug}"), 40, fingerprint=f"fp-{slug}", via=via)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        pushes = [link(1), link(1), hub_link("a"), link(3), hub_link("b"), article(5), link(7)]
        result = await q.flush(pushes, [], max_links=2)
        # Only new links count: the repeat is filtered, a listing's article is not a link.
        assert (result.queued, result.filtered, result.links) == (3, 1, 2)
        assert result.links_cut == [pushes[3], pushes[4], pushes[6]]
        assert [p.via for p in result.links_cut] == [via] * 3
        # A link refused is not marked seen: a listing still queues it, or a later run.
        hub = Push(member("https://tass.com/b"), 40, fingerprint="fp-b")
        listed = await q.flush([article(3), hub], [], max_links=2)
        assert (listed.queued, listed.links, listed.links_cut) == (2, 0, [])
        assert int(await client.get(keys.run_links)) == 2

    run(scenario, redis_url)
    assert redis_client.getbit(keys.seen_articles, 7) == 0
    assert redis_client.getbit(keys.seen_articles, 3) == 1


def test_a_page_link_keeps_no_trace_of_its_page_in_the_queue() -> None:
    s = spider()
    request = s.article_request("https://tass.com/world/2150013", s.run.params)
    assert request is not None
    request.meta[VIA_META] = "https://tass.com/world/2150011"
    push = push_for(request, s, lambda r: b"")
    assert push.via == "https://tass.com/world/2150011" and push.mode() == "p"
    assert VIA_META not in json.loads(push.member).get("meta", {})
    # Anything else marked unfiltered (a redirect, a retry, a replay) is not a new link.
    assert Push(push.member, via=push.via, unfiltered=True).mode() == "1"


def test_leases_are_acked_or_return_when_they_expire(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)
    short = Budget(interval_ms=0.1, per_second=10_000, concurrency=100, lease_ms=300)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        await q.flush([article(1, 100), article(3, 50), article(5, 10)], [])
        popped = await q.pop(2, short)
        assert [json.loads(lease)["priority"] for lease in popped.leases] == [100, 50]
        assert await q.counts() == (1, 2, 0)
        # w1 finishes the first, queuing a child in the same call, then dies with the second.
        done = popped.leases[0]
        result = await q.flush([article(9)], [done])
        assert result.acked == 1
        assert await q.counts() == (2, 1, 0)
        await asyncio.sleep(0.4)
        other = await q.pop(10, short)
        assert other.reaped == 1
        urls = sorted(json.loads(lease)["url"] for lease in other.leases)
        assert urls == ["https://tass.com/world/3", "https://tass.com/world/5",
                        "https://tass.com/world/9"]  # fmt: skip
        # A renewed lease does not expire.
        await q.renew(list(other.leases), 300)
        await asyncio.sleep(0.2)
        await q.renew(list(other.leases), 300)
        await asyncio.sleep(0.2)
        assert (await q.pop(10, short)).reaped == 0
        assert await q.counts() == (0, 3, 0)

    run(scenario, redis_url)


def test_releases_go_back_to_the_queue_at_once(redis_url, key_prefix) -> None:
    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        await q.flush([article(1)], [])
        lease = (await q.pop(1, FAST)).leases[0]
        await q.flush([], [], releases=[lease])
        assert await q.counts() == (1, 0, 0)

    run(scenario, redis_url)


def test_retries_wait_for_their_delay(redis_url, key_prefix) -> None:
    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        await q.flush([Push(member("https://tass.com/world/1"), unfiltered=True, delay_ms=300)], [])
        assert await q.counts() == (0, 0, 1)
        assert (await q.pop(5, FAST)).leases == []
        await asyncio.sleep(0.35)
        assert len((await q.pop(5, FAST)).leases) == 1

    run(scenario, redis_url)


def test_send_times_are_spaced_and_capped_for_the_whole_cluster(redis_url, key_prefix) -> None:
    budget = Budget(interval_ms=50, per_second=10, concurrency=100, lease_ms=60_000)

    async def scenario(client):
        a = RedisFrontier(client, FrontierKeys(key_prefix))
        b = RedisFrontier(client, FrontierKeys(key_prefix))  # another worker
        first = await reserve_sends(a, budget, "a", 4)
        second = await reserve_sends(b, budget, "b", 8)
        times = first.times_ms + second.times_ms
        assert first.times_ms[0] == first.now_ms, "the first send may go at once"
        assert len(first.times_ms) == 4
        # 50 ms apart, whoever holds them; 20 a second would fit, the cap allows 10.
        assert all(later - earlier >= 50 for earlier, later in pairwise(times))
        # Ten at 0-450 ms, the eleventh when the first leaves the (half-open) one-second
        # window, at 1000 ms: the horizon.
        assert len(times) == 11 and times[10] - times[0] == 1000
        assert all(times[i + 10] - times[i] >= 1000 for i in range(len(times) - 10))
        refused = await reserve_sends(a, budget, "a", 1)
        assert refused.times_ms == [] and refused.retry_at_ms > refused.now_ms
        # A reservation made later keeps both rules with everything reserved before it.
        await asyncio.sleep((refused.retry_at_ms - refused.now_ms) / 1000)
        later = await reserve_sends(a, budget, "a", 8)
        everything = sorted(times + later.times_ms)
        assert all(y - x >= 50 for x, y in pairwise(everything))
        assert all(everything[i + 10] - everything[i] >= 1000 for i in range(len(everything) - 10))

    run(scenario, redis_url)


def test_crawl_delay_widens_the_spacing_for_everyone(redis_url, key_prefix) -> None:
    budget = Budget(interval_ms=10, per_second=100, concurrency=100, lease_ms=60_000)

    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        await q.set_min_interval(0.3)
        times = (await reserve_sends(q, budget, "a", 8)).times_ms
        assert len(times) == 4  # 0, 300, 600, 900 ms: the horizon is one second
        assert all(y - x >= 300 for x, y in pairwise(times))

    run(scenario, redis_url)


def test_leases_are_not_bounded_by_the_site_budget_requests_at_the_site_are(
    redis_url, key_prefix
) -> None:
    """Issue 11 item 9: one worker's leases (ready, not yet at the site) no longer use up
    CRAWL_CONCURRENCY; only requests at the site count, and waiting requests of every worker
    get in in the order they first asked, however often each asks."""
    budget = Budget(interval_ms=0.1, per_second=10_000, concurrency=2, lease_ms=60_000)

    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        await q.flush([article(i) for i in range(1, 40, 2)], [])
        assert len((await q.pop(8, budget)).leases) == 8, "worker a fills its buffer"
        assert len((await q.pop(8, budget)).leases) == 8, "worker b still gets leases"
        assert await enter_site(q, budget, "a:1") == -1
        assert await enter_site(q, budget, "a:2") == -1
        assert await enter_site(q, budget, "b:1") == 0, "full: b's request is first in line"
        for _ in range(5):  # a asks again and again: it stays behind b
            assert await enter_site(q, budget, "a:3") == 1
        await leave_site(q, budget, "a:1")
        assert await enter_site(q, budget, "a:3") == 1, "the free place is b's"
        assert await enter_site(q, budget, "b:1") == -1
        await leave_site(q, budget, "a:2")
        assert await enter_site(q, budget, "a:3") == -1
        assert await client.zcard(q.keys.at_site) == 2

    run(scenario, redis_url)


def test_places_of_dead_workers_lapse_and_their_waiters_leave_the_line(
    redis_url, key_prefix
) -> None:
    budget = Budget(
        interval_ms=0.1, per_second=10_000, concurrency=1, lease_ms=60_000, stale_ms=200,
        site_ttl_ms=300,
    )  # fmt: skip

    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        assert await enter_site(q, budget, "dead:1") == -1
        assert await enter_site(q, budget, "dead:2") == 0  # waits, then its worker dies
        assert await enter_site(q, budget, "alive:1") == 1
        await asyncio.sleep(0.4)  # past both the place's lapse and the waiter's staleness
        assert await enter_site(q, budget, "alive:1") == -1
        assert await client.zrange(q.keys.site_waiting, 0, -1) == []

    run(scenario, redis_url)


def test_a_pause_holds_every_workers_next_send(redis_url, key_prefix) -> None:
    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        await q.pause(0.4)
        await q.pause(0.1)  # a shorter pause never cuts a longer one short
        held = await reserve_sends(q, FAST, "a", 4)
        assert held.times_ms == [] and 300 < held.retry_at_ms - held.now_ms <= 400
        other = RedisFrontier(client, FrontierKeys(key_prefix))
        assert (await reserve_sends(other, FAST, "b", 1)).times_ms == []
        await asyncio.sleep(0.41)
        assert len((await reserve_sends(other, FAST, "b", 1)).times_ms) == 1

    run(scenario, redis_url)


def test_dead_letters_are_kept_and_replayed(redis_url, key_prefix, redis_client) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        await q.flush([article(5)], [])
        lease = (await q.pop(1, FAST)).leases[0]
        letter = DeadLetter("https://tass.com/world/5", lease, "http_503", 4, 5)
        await q.flush([], [lease], dead=[letter], now_ms=1)
        letters = await q.dead_letters()
        assert letters["https://tass.com/world/5"]["reason"] == "http_503"
        assert await q.counts() == (0, 0, 0)
        assert await q.replay() == 1
        assert await q.counts() == (1, 0, 0) and await q.dead_letters() == {}

    run(scenario, redis_url)
    # The dead letter also forgot the id, so discovery in a later run queues it again.
    assert int(redis_client.getbit(keys.seen_articles, 5)) == 0


def test_a_dead_letter_that_ends_its_lease_counts_it_failed_and_forgets_its_hint(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        raw = {"url": "https://tass.com/world/7", "meta": {"article_id": 7}}
        hinted = Push(json.dumps(raw).encode(), 100, 7, hint=b'{"a":{"title":"T"}}')
        assert (await q.flush([hinted, article(8)], [])).hints_kept == 1
        first, second = (await q.pop(2, FAST)).leases
        letter = DeadLetter("https://tass.com/world/7", first, "http_404", 1, 7, lease=first)
        result = await q.flush([], [second], dead=[letter])
        assert result.acked == 2, "the ack and the lease the dead letter ended"
        assert await q.counts() == (0, 0, 0)

    run(scenario, redis_url)
    tally = redis_client.hgetall(keys.run_tally)
    assert tally == {b"enqueued": b"2", b"done": b"1", b"failed": b"1"}
    assert redis_client.hlen(keys.hints) == 0, "its hint went with its lease"
    assert redis_client.getbit(keys.awaiting_articles, 7) == 0


def test_replay_failures_command_lists_and_requeues(redis_url, key_prefix, redis_client) -> None:
    import subprocess
    import sys
    from pathlib import Path

    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        q = RedisFrontier(client, keys)
        letters = [
            DeadLetter(f"https://tass.com/world/{i}", member(f"https://tass.com/world/{i}"), r, 4)
            for i, r in ((1, "http_503"), (3, "too_large"))
        ]
        await q.flush([], [], dead=letters)

    run(scenario, redis_url)
    repo = Path(__file__).resolve().parents[2]
    env = {"REDIS_URL": redis_url, "TASS_REDIS_PREFIX": key_prefix, "PATH": "/usr/bin:/bin"}

    def command(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "scrapy", "replay", *args],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    assert "2 dead letters" in command("--list")
    assert "queued 1 dead letters again" in command("--reason", "http_")
    assert int(redis_client.zcard(keys.pending)) == 1
    assert "1 dead letters" in command("--list")


def test_replay_from_mongo_queues_pending_retries_as_they_were_and_feeds_failed_urls(
    redis_url, key_prefix, redis_client, mongo_uri, mongo_db_name, mongo_db
) -> None:
    """Redis lost its dead letters and delayed retries: ``scrapy replay --from-mongo`` queues
    them from MongoDB's failures (a pending retry as its member, a final failure by its URL)."""
    import subprocess
    import sys
    from pathlib import Path

    keys = FrontierKeys(key_prefix)
    retry = (
        member("https://tass.com/world/5")
        .decode()
        .replace('"url"', '"meta":{"retry_times":1},"url"')
    )
    mongo_db.failures.insert_many(
        [
            {"url": "https://tass.com/world/5", "reason": "http_503", "attempts": 0,
             "retry": {"attempts": 1, "request": retry, "reason": "http_503"}},
            {"url": "https://tass.com/world/7", "reason": "http_404", "attempts": 1},
            {"url": "https://tass.com/world/9", "reason": "too_large", "attempts": 2},
        ]
    )  # fmt: skip
    redis_client.hset(keys.dead, "https://tass.com/world/7", "{}")
    repo = Path(__file__).resolve().parents[2]
    env = {
        "REDIS_URL": redis_url, "TASS_REDIS_PREFIX": key_prefix, "PATH": "/usr/bin:/bin",
        "MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name,
    }  # fmt: skip

    def command(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "scrapy", "replay", "--from-mongo", *args],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    listed = command("--list")
    assert "3 failures in MongoDB" in listed and "retry pending  https://tass.com/world/5" in listed
    assert "1 failures in MongoDB" in command("--list", "--pending")
    out = command("--reason", "http_")
    assert "queued 1 pending retries as they were, and fed 1 URLs" in out, out
    assert redis_client.zrange(keys.pending, 0, -1) == [retry.encode()]
    assert redis_client.lrange(keys.start_urls, 0, -1) == [b"https://tass.com/world/7"]
    assert not redis_client.hexists(keys.dead, "https://tass.com/world/7")


def test_known_articles_reads_the_redis_bitmap_and_own_pushes(redis_client, key_prefix) -> None:
    from crawler.frontier.known import KnownArticles, droppable

    keys = FrontierKeys(key_prefix)
    for article_id in (1, 8, 2_198_933):
        redis_client.setbit(keys.seen_articles, article_id, 1)
    known = KnownArticles()
    known.replace(redis_client.get(keys.seen_articles))
    assert [i in known for i in (1, 2, 7, 8, 9, 2_198_933, 2_198_935, 10**9)] == [
        True, False, False, True, False, True, False, False,
    ]  # fmt: skip
    known.add(2_198_935)
    assert 2_198_935 in known
    # Only ordinary article requests may be dropped; a feed's sighting, redirects, retries go on.
    assert droppable(Request("https://tass.com/world/8", meta={"article_id": 8})) == 8
    assert droppable(Request("https://tass.com/world", meta={"kind": "hub"})) is None
    for meta in ({"sighting": {"l": 1}}, {"redirect_times": 1}):
        assert droppable(Request("https://tass.com/w/8", meta={"article_id": 8, **meta})) is None
    assert (
        droppable(Request("https://tass.com/w/8", meta={"article_id": 8}, dont_filter=True)) is None
    )


def test_a_place_given_back_goes_with_the_next_ask_or_alone_soon(redis_url, key_prefix) -> None:
    """SiteSlots sends a leave with the worker's next ask (one round trip for both); with no
    ask to go with, alone within LEAVE_DELAY. The place is never given back early. (No kept
    places here, ``keep=0``: the next test has them.)"""
    from crawler.frontier.siteslots import LEAVE_DELAY, SiteSlots

    budget = Budget(interval_ms=0.1, per_second=10_000, concurrency=1, lease_ms=60_000)

    async def scenario(client):
        q = RedisFrontier(client, FrontierKeys(key_prefix))
        slots = SiteSlots(q, budget, "w", keep=0)
        first = await slots.enter()
        assert await client.zrange(q.keys.at_site, 0, -1) == [first.token.encode()]
        before = q.round_trips
        await slots.leave(first)
        assert q.round_trips == before, "not sent yet"
        assert await client.zcard(q.keys.at_site) == 1, "held until sent: never early"
        second = await slots.enter()  # the only place: free only if the leave went with it
        assert q.round_trips == before + 1
        assert await client.zrange(q.keys.at_site, 0, -1) == [second.token.encode()]
        await slots.leave(second)
        await asyncio.sleep(LEAVE_DELAY * 4)
        assert await client.zcard(q.keys.at_site) == 0, "sent alone"
        assert q.round_trips == before + 2

    run(scenario, redis_url)


def test_a_kept_place_is_given_up_once_another_worker_waits(redis_url, key_prefix) -> None:
    """A worker told that nobody waits passes a place given back to its next request, with
    no ask, for ``keep`` seconds; past them it asks, hears of the other worker's waiter, and
    its place goes to that waiter first (the line's order): no worker is starved."""
    from crawler.frontier.siteslots import SiteSlots

    budget = Budget(interval_ms=0.1, per_second=10_000, concurrency=1, lease_ms=60_000)

    async def scenario(client):
        keys = FrontierKeys(key_prefix)
        a = SiteSlots(RedisFrontier(client, keys), budget, "a", keep=1.0)
        b = SiteSlots(RedisFrontier(client, keys), budget, "b", keep=1.0)
        a1 = await a.enter()
        b_waits = asyncio.create_task(b.enter())
        while not await client.zcard(keys.site_waiting):
            await asyncio.sleep(0.01)
        await a.leave(a1)
        a2 = await a.enter()
        assert a2 is not None and a1 is not None
        assert a2.token == a1.token and a.kept == 1, "nobody waited when a last asked"
        await asyncio.sleep(1.0)  # past keep: a asks again, and hears of b's waiter
        await a.leave(a2)
        a_waits = asyncio.create_task(a.enter())
        b1 = await b_waits
        assert b1 is not None and not a_waits.done(), "b asked first: the place is b's"
        assert await client.zrange(keys.at_site, 0, -1) == [b1.token.encode()]
        await b.leave(b1)
        a3 = await a_waits
        assert a3 is not None and a3.token != a1.token and a.kept == 1
        await a.leave(a3)

    run(scenario, redis_url)


def test_with_redis_unreachable_requests_go_uncounted_paced_by_their_worker() -> None:
    """No Redis: a request goes ahead with no place (None), each a budget's interval after
    the one before it, as a worker paces itself alone."""
    import time

    from redis.asyncio import Redis

    from crawler.frontier.siteslots import SiteSlots

    budget = Budget(interval_ms=50, per_second=10, concurrency=1, lease_ms=60_000)

    async def scenario():
        client = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
        try:
            slots = SiteSlots(RedisFrontier(client, FrontierKeys("nowhere")), budget, "w")

            async def one() -> tuple[object, float]:
                place = await slots.enter()
                return place, time.monotonic()

            went = await asyncio.gather(*(one() for _ in range(4)))
        finally:
            await client.aclose()
        assert [place for place, _ in went] == [None] * 4
        times = sorted(at for _, at in went)
        assert all(later - earlier >= 0.045 for earlier, later in pairwise(times)), times

    asyncio.run(scenario())
