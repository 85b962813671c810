"""Run coordination against a real Redis: one run, seeded once, finished once."""

from __future__ import annotations

import json

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Budget, Push, RedisFrontier
from crawler.frontier.run import RunCoordinator
from tests.unit.frontier_helpers import run

FAST = Budget(interval_ms=0.1, per_second=10_000, max_fetching=100, lease_ms=60_000)


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
        lease = (await q.pop(1, FAST, "a", 0)).leases[0]
        await a.tick(2, {})
        assert not (await b.state()).idle
        await q.flush([], [lease])
        await a.tick(0, {})
        assert (await b.state()).idle
        await a.tick(0, {"tass/run/articles": 3})
        await b.tick(None, {"tass/run/articles": 4})
        stats = await b.finish(run_b)
        assert stats == {"tass/run/articles": 7}
        assert await a.finish(run_a) is None and await a.current() is None
        assert not await client.exists(keys.seen_hubs)

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
