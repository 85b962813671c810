"""Run coordination against a real Redis: one run, seeded once, finished once."""

from __future__ import annotations

import json

import pytest

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Budget, DeadLetter, Push, RedisFrontier, StateLost
from crawler.frontier.run import RunCoordinator
from tests.unit.frontier_helpers import run

FAST = Budget(interval_ms=0.1, per_second=10_000, concurrency=100, lease_ms=60_000)


def seed(url: str) -> Push:
    return Push(json.dumps({"url": url}).encode(), 40, fingerprint=url)


def test_one_run_at_a_time_seeded_once_and_finished_once(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        a = RunCoordinator(client, keys, worker_id="a")
        b = RunCoordinator(client, keys, worker_id="b")
        run_a, seeded_a = await a.begin({"since": "all"}, [seed("https://tass.com/world")])
        run_b, seeded_b = await b.begin({"since": "2026-01-01"}, [seed("https://tass.com/x")])
        assert seeded_a and not seeded_b and run_a == run_b
        assert run_b.args == {"since": "all"}
        q = RedisFrontier(client, keys)
        assert await q.counts() == (1, 0, 0), "only the first run's seeds were queued"
        state = await b.state()
        assert not state.idle and state.run == run_a
        assert await b.finish(run_b) is None, "a run with work left does not finish"
        lease = (await q.pop(1, FAST)).leases[0]
        await a.tick(2, {})
        assert not (await b.state()).idle
        link = Push(json.dumps({"url": "https://tass.com/y"}).encode(), 40, fingerprint="y",
                    via="https://tass.com/world")  # fmt: skip
        await q.flush([link], [lease])
        assert int(await client.get(keys.run_links)) == 1
        await q.flush([], [(await q.pop(1, FAST)).leases[0]])
        await a.tick(0, {})
        assert (await b.state()).idle
        await a.tick(0, {"tass/run/articles": 3})
        await b.tick(None, {"tass/run/articles": 4})
        stats = await b.finish(run_b)
        assert stats == {"tass/run/articles": 7}
        assert await a.finish(run_a) is None and await a.current() is None
        assert not await client.exists(keys.seen_hubs)
        assert not await client.exists(keys.run_links), "a run's link count ends with it"

    run(scenario, redis_url)


def test_stale_heartbeats_of_dead_workers_are_dropped(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        dead = RunCoordinator(client, keys, worker_id="dead")
        await dead.tick(5, {})
        alive = RunCoordinator(client, keys, worker_id="alive", stale_after=-1)
        assert (await alive.state()).others_unflushed == 0
        assert await client.hget(keys.workers, "dead") is None

    run(scenario, redis_url)


def test_run_requests_queue_for_the_workers(redis_url, key_prefix) -> None:
    async def scenario(client):
        c = RunCoordinator(client, FrontierKeys(key_prefix))
        await c.request_run({"since": "2026-11-01"})
        assert await c.requested_runs() == 1
        assert await c.pop_run_request() == {"since": "2026-11-01"}
        assert await c.pop_run_request() is None

    run(scenario, redis_url)


def test_a_run_begins_an_epoch_and_writes_of_a_lost_epoch_are_refused(
    redis_url, key_prefix
) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        a = RunCoordinator(client, keys, worker_id="a")
        first, _ = await a.begin({}, [seed("https://tass.com/world")])
        epoch = a.epoch
        assert epoch and (await a.state()).epoch == epoch
        q = RedisFrontier(client, keys)
        await q.flush([seed("https://tass.com/economy")], [], epoch=epoch)
        # Redis loses everything (FLUSHALL, a restart without persistence).
        await client.delete(*[k async for k in client.scan_iter(f"{key_prefix}:*")])
        with pytest.raises(StateLost):
            await q.flush([seed("https://tass.com/politics")], [], epoch=epoch)
        assert await q.counts() == (0, 0, 0), "nothing of the lost run was written back"
        state = await a.state()
        reason = state.lost(epoch, first.id)
        assert reason is not None and reason.startswith("redis_state_lost: Redis's epoch was")
        # A new run gets a new epoch.
        await a.begin({}, [])
        assert a.epoch and a.epoch != epoch

    run(scenario, redis_url)


def test_a_vanished_run_record_is_a_lost_state_an_ended_run_is_not(redis_url, key_prefix) -> None:
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        a = RunCoordinator(client, keys, worker_id="a")
        ended, _ = await a.begin({}, [])
        assert await a.finish(ended) is not None
        state, _ = await a.tick(None, {}, run_id=ended.id)
        assert state.ended and state.lost(a.epoch, ended.id) is None
        vanished, _ = await a.begin({}, [])
        await client.delete(keys.run)
        state, _ = await a.tick(None, {}, run_id=vanished.id)
        assert state.lost(a.epoch, vanished.id) == (
            f"redis_state_lost: the record of run {vanished.id} vanished before the run ended"
        )

    run(scenario, redis_url)


def test_a_new_run_starts_from_a_clean_state(redis_url, key_prefix) -> None:
    """What a lost run's workers wrote after the loss (counters, hub fingerprints, announced
    articles, capped counts) is not inherited by the next run."""
    keys = FrontierKeys(key_prefix)

    async def scenario(client):
        await client.hset(keys.run_stats, "tass/run/articles", 3019)
        await client.setbit(keys.run_announced_articles, 7, 1)
        await client.sadd(keys.seen_hubs, "hub-fingerprint")
        await client.set(keys.run_articles, 50)
        await client.setbit(keys.run_seen_articles, 7, 1)
        a = RunCoordinator(client, keys, worker_id="a")
        hub = seed("https://tass.com/world")
        _, seeded = await a.begin({}, [Push(hub.member, 40, fingerprint="hub-fingerprint")])
        assert seeded
        assert await RedisFrontier(client, keys).counts() == (1, 0, 0), "the hub is walked"
        assert await client.hgetall(keys.run_stats) == {}
        assert await client.getbit(keys.run_announced_articles, 7) == 0
        assert await client.get(keys.run_articles) is None
        assert await client.getbit(keys.run_seen_articles, 7) == 0

    run(scenario, redis_url)


def test_an_article_that_failed_twice_in_a_run_is_not_queued_again_in_it(
    redis_url, key_prefix
) -> None:
    keys = FrontierKeys(key_prefix)

    def article() -> Push:
        return Push(json.dumps({"url": "https://tass.com/world/5"}).encode(), 100, 5)

    async def scenario(client):
        a = RunCoordinator(client, keys, worker_id="a")
        current, _ = await a.begin({}, [])
        q = RedisFrontier(client, keys)
        fetched = 0
        for _ in range(4):  # found again and again (each page that links it)
            result = await q.flush([article()], [])
            if result.queued:
                fetched += 1
                [lease] = (await q.pop(1, FAST)).leases
                letter = DeadLetter("https://tass.com/world/5", lease, "not_article", 1, 5)
                await q.flush([], [lease], dead=[letter])
        assert fetched == 2, "fetched, then once more, then no more in this run"
        assert await a.finish(current) is not None
        await a.begin({}, [])
        assert (await q.flush([article()], [])).queued == 1, "the next run tries it again"

    run(scenario, redis_url)
