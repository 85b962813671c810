"""Plain article requests queued as bits (``crawler.frontier.plain``) against a real Redis:
the same member back, priority order, hand-backs, reaping, the tally and abandon."""

from __future__ import annotations

import asyncio
import json

from crawler.frontier.codec import push_for
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.plain import PlainForm
from crawler.frontier.queue import Budget, Push, RedisFrontier
from crawler.frontier.run import RunCoordinator
from tests.unit.frontier_helpers import run, spider

FAST = Budget(interval_ms=0.1, per_second=10_000, concurrency=1000, lease_ms=60_000)


def test_plain_article_requests_wait_as_bits_and_lease_as_their_member(
    redis_url, key_prefix, redis_client
) -> None:
    s = spider()
    keys = FrontierKeys(key_prefix)
    params = s.run.params
    urls = [
        "https://tass.com/world/2150013",
        "https://tass.com/defense/7",
        "https://tass.com/sports/2198933",
    ]
    pushes = [
        push_for(s.article_request(u, params), s, s.crawler.request_fingerprinter.fingerprint)
        for u in urls
    ]
    form = PlainForm()
    assert [p.member for p in pushes] == [
        form.member(int(u.rsplit("/", 1)[1]), u.split("/")[3], 100) for u in urls
    ], "the spider's article request is the form's member"
    # Not plain: a theme's article (no section code), a member the form does not rebuild
    # (a leading zero), a hub above the articles, one below.
    theme = Push(form.member(11, "space-programs", 100), 100, 11)
    zero = Push(form.member(13, "world", 100).replace(b":13,", b":013,"), 100, 13)
    urgent = Push(json.dumps({"url": "https://tass.com/x", "priority": 200}).encode(), 200)
    hub = Push(json.dumps({"url": "https://tass.com/world", "priority": 40}).encode(), 40)

    async def scenario(client):
        q = RedisFrontier(client, keys, form)
        result = await q.flush([*pushes, theme, zero, urgent, hub], [])
        assert result.queued == 7
        assert await client.zcard(keys.pending) == 4, "only the plain ones are bits"
        assert await q.counts() == (7, 0, 0)
        assert int(await client.hget(keys.run_tally, "enqueued")) == 7
        # The same request again (unfiltered) waits once.
        again = Push(pushes[0].member, 100, pushes[0].article_id, unfiltered=True)
        assert (await q.flush([again], [])).queued == 1
        assert int(await client.hget(keys.run_tally, "enqueued")) == 7
        popped = (await q.pop(10, FAST)).leases
        assert popped[0] == urgent.member and popped[-1] == hub.member, "priority order"
        plain = [p.member for p in sorted(pushes, key=lambda p: p.article_id)]
        assert [m for m in popped[1:-1] if m in plain] == plain, "bits in id order"
        assert await q.counts() == (0, 7, 0)
        assert not await client.exists(keys.pending_plain, keys.pending_plain_sections)
        # A hand-back returns a plain lease to the bits; a reaped one too.
        await q.flush([], [], [pushes[1].member])
        assert (await q.counts(), await client.zcard(keys.pending)) == ((1, 6, 0), 0)
        short = Budget(interval_ms=0.1, per_second=10_000, concurrency=1000, lease_ms=1)
        assert (await q.pop(1, short)).leases == [pushes[1].member]
        await asyncio.sleep(0.02)  # past the lease
        got = await q.pop(10, FAST)
        assert got.reaped == 1 and got.leases == [pushes[1].member]
        # A form other than the one the bits were queued under queues members.
        await q.flush([], [], [pushes[0].member])
        other = RedisFrontier(client, keys, PlainForm("http://127.0.0.1:8080"))
        await other.flush([], [], [pushes[2].member])
        assert await client.zcard(keys.pending) == 1 and await q.counts() == (2, 5, 0)

    run(scenario, redis_url)


def test_an_abandoned_run_clears_the_seen_bits_of_its_plain_requests(
    redis_url, key_prefix, redis_client
) -> None:
    keys = FrontierKeys(key_prefix)
    form = PlainForm()
    pushes = [Push(form.member(i, "world", 100), 100, i) for i in (3, 5, 9)]

    async def scenario(client):
        coordinator = RunCoordinator(client, keys)
        run_, began = await coordinator.begin({"since": "all"}, [])
        assert began
        q = RedisFrontier(client, keys, form)
        await q.flush(pushes, [])
        [lease] = (await q.pop(1, FAST)).leases
        assert lease == pushes[0].member
        found = await coordinator.abandon(run_.id)
        assert found is not None and found[1] == 3, "two as bits, one leased"
        assert await q.counts() == (0, 0, 0)
        cleared = await coordinator.forget_abandoned(
            lambda m: int(json.loads(m)["url"].rsplit("/", 1)[1])
        )
        assert cleared == 3
        assert [await client.getbit(keys.seen_articles, i) for i in (3, 5, 9)] == [0, 0, 0]

    run(scenario, redis_url)
