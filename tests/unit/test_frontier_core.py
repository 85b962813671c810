"""The frontier's Scrapy-free core against a real Redis: the lease window and the run lifecycle."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from crawler.errors import RunConflict
from crawler.frontier.config import FrontierConfig
from crawler.frontier.counters import Counters
from crawler.frontier.health import RedisHealth
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.known import KnownArticles
from crawler.frontier.lifecycle import RunLifecycle, RunScope
from crawler.frontier.queue import Budget, DeadLetter, Push, RedisFrontier, StateLost
from crawler.frontier.report import build_report
from crawler.frontier.run import RunCoordinator
from crawler.frontier.window import LeaseWindow
from crawler.outcome import OutcomeConfig, decide
from crawler.params import ParamDefaults
from tests.unit.frontier_helpers import run


def config(prefix: str, url: str, **changes: Any) -> FrontierConfig:
    base = FrontierConfig(
        redis_url=url,
        keys=FrontierKeys(prefix),
        budget=Budget(interval_ms=0.1, per_second=10_000, concurrency=100, lease_ms=60_000),
        prefetch=3,
        idle_grace=0.2,
        heartbeat=0.05,
        flush_delay=0.01,
        worker_stale=30.0,
    )
    return replace(base, **changes)


def article(article_id: int) -> Push:
    member = json.dumps({"url": f"https://tass.com/world/{article_id}", "priority": 100})
    return Push(member.encode(), 100, article_id)


class Parts:
    """A window and what it reports to, on one client."""

    def __init__(self, client: Redis, cfg: FrontierConfig, worker: str = "w") -> None:
        self.queue = RedisFrontier(client, cfg.keys)
        self.health = RedisHealth()
        self.stats: dict[str, int] = {}
        self.counters = Counters(self._sink)
        self.woken = 0
        self.window = LeaseWindow(
            self.queue, cfg, worker, self.health, self.counters,
            on_leased=self.wake, max_articles=lambda: 0,
        )  # fmt: skip

    def _sink(self, key: str, value: int) -> None:
        self.stats[key] = self.stats.get(key, 0) + value

    def wake(self) -> None:
        self.woken += 1


async def settle(condition, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


def test_the_window_leases_acknowledges_and_releases(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        parts = Parts(client, cfg)
        window = parts.window
        window.start()
        for i in (1, 3, 5, 7, 9):
            window.push(article(i))
        assert window.unflushed() == 5  # held until the batch reaches Redis
        await settle(lambda: window.unflushed() == 0)
        assert await parts.queue.counts() == (5, 0, 0)
        window.want()
        await settle(lambda: len(window.ready) == cfg.prefetch)
        assert parts.woken >= 1 and parts.stats["tass/frontier/leased"] == 3
        assert await parts.queue.counts() == (2, 3, 0)
        first = window.take()
        assert first is not None
        window.started("request-1", first)
        assert window.holding() and first in window.held()
        # Done with it: a child queued first, then its acknowledgement, in one flush.
        window.push(article(11))
        window.finished("request-1")
        await settle(lambda: window.unflushed() == 0)
        assert parts.stats["tass/frontier/acked"] == 1
        assert await parts.queue.counts() == (3, 2, 0)
        # A dead letter replaces its lease.
        second = window.take()
        assert second is not None
        window.dead(DeadLetter("https://tass.com/x", second, "undecodable", 1, lease=second))
        await settle(lambda: window.unflushed() == 0)
        assert "https://tass.com/x" in await parts.queue.dead_letters()
        # Closing hands the leases not done with back to the queue at once.
        await window.close()
        assert await parts.queue.counts() == (4, 0, 0)

    run(scenario, redis_url)


class CancelLosingQueue(RedisFrontier):
    """A queue whose lease call loses its cancellation, as a Redis call can: on Python 3.11 its
    own timeout firing as the cancellation arrives (a TimeoutError), or the client answering a
    cancelled read with a connection error."""

    error: type[Exception] = TimeoutError

    async def pop(self, *args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            raise self.error("the cancellation was lost") from None
        return await super().pop(*args, **kwargs)


def test_an_idle_window_leases_a_delayed_retry_when_it_comes_due(redis_url, key_prefix) -> None:
    """Nobody asks after the first empty pop (an idle engine asks every 5 s): the pop said when
    the retry comes due, and the window leases it then and wakes the engine."""
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        parts = Parts(client, cfg)
        await parts.queue.flush([replace(article(1), unfiltered=True, delay_ms=400)], [])
        empty = await parts.queue.pop(5, cfg.budget)
        assert empty.leases == [] and 350 <= empty.due_ms - empty.now_ms <= 400
        parts.window.start()
        parts.window.want()  # the only ask: the retry is not due yet
        await asyncio.sleep(0.2)
        assert not parts.window.ready and parts.woken == 0
        await settle(lambda: len(parts.window.ready) == 1, timeout=3.0)
        assert parts.woken == 1
        await parts.window.close()

    run(scenario, redis_url)


def test_a_pop_with_nothing_waiting_says_nothing_comes_due(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        queue = RedisFrontier(client, cfg.keys)
        assert (await queue.pop(5, cfg.budget)).due_ms == 0
        await queue.flush([article(1)], [])
        leased = await queue.pop(5, cfg.budget)
        assert len(leased.leases) == 1 and leased.due_ms == 0  # leased: nothing to wait for
        idle = await queue.pop(5, cfg.budget)
        assert idle.leases == [] and idle.due_ms == leased.now_ms + cfg.budget.lease_ms

    run(scenario, redis_url)


@pytest.mark.parametrize("error", [TimeoutError, RedisConnectionError])
def test_the_window_closes_even_when_a_lease_call_loses_its_cancellation(
    redis_url, key_prefix, error
) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        parts = Parts(client, cfg)
        parts.window.queue = queue = CancelLosingQueue(client, cfg.keys)
        queue.error = error
        await queue.flush([article(1), article(3)], [])
        parts.window.start()
        parts.window.want()  # the fill loop is now in its slow lease call
        await asyncio.sleep(0.1)
        await asyncio.wait_for(parts.window.close(), 10)  # it waited for work forever before
        assert await queue.counts() == (2, 0, 0)  # what it leased meanwhile went back

    run(scenario, redis_url)


def test_a_request_that_failed_for_good_ends_its_lease_as_its_dead_letter(
    redis_url, key_prefix, redis_client
) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        parts = Parts(client, cfg)
        window = parts.window
        window.start()
        await parts.queue.flush([article(21), article(22)], [])
        window.want()
        await settle(lambda: len(window.ready) == 2)
        failing, fine = window.take(), window.take()
        assert failing is not None and fine is not None
        window.started("failing", failing)
        window.started("fine", fine)
        letter = DeadLetter("https://tass.com/world/21", failing, "http_404", 1, 21)
        window.failed("failing", letter)  # its failure is recorded before it is done with
        await settle(lambda: window.unflushed() == 0)
        assert await parts.queue.dead_letters() == {}, "written once it is done with"
        window.finished("failing")
        window.finished("fine")
        await settle(lambda: window.unflushed() == 0)
        assert list(await parts.queue.dead_letters()) == ["https://tass.com/world/21"]
        assert await parts.queue.counts() == (0, 0, 0)
        await window.close()

    run(scenario, redis_url)
    tally = redis_client.hgetall(FrontierKeys(key_prefix).run_tally)
    assert tally == {b"enqueued": b"2", b"done": b"1", b"failed": b"1"}


def test_the_window_renews_the_leases_it_holds(redis_url, key_prefix) -> None:
    budget = Budget(interval_ms=0.1, per_second=10_000, concurrency=100, lease_ms=300)
    cfg = config(key_prefix, redis_url, budget=budget)

    async def scenario(client):
        parts = Parts(client, cfg)
        await parts.queue.flush([article(1)], [])
        parts.window.start()
        parts.window.want()
        await settle(lambda: len(parts.window.ready) == 1)
        await asyncio.sleep(0.5)  # past the lease: only renewal keeps it
        other = await parts.queue.pop(5, budget)
        assert other.reaped == 0 and other.leases == []
        await parts.window.close()

    run(scenario, redis_url)


def test_the_window_holds_its_writes_while_redis_is_away(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        parts = Parts(dead, cfg)
        parts.window.push(article(1))
        await settle(lambda: not parts.health.ok)
        assert parts.window.unflushed() == 1, "nothing is dropped while Redis is away"
        await dead.aclose()
        # The same write reaches a live Redis once there is one (a restarted server).
        parts.window.queue = RedisFrontier(client, cfg.keys)
        await settle(lambda: parts.window.unflushed() == 0, timeout=10)
        assert parts.health.ok and await parts.window.queue.counts() == (1, 0, 0)

    run(scenario, redis_url)


class Seeder:
    """What a spider gives the lifecycle: seeds for some parameters, a place for its scope."""

    def __init__(self) -> None:
        self.scopes: list[RunScope] = []
        self.recoveries = 0
        self.pending: list[Push] = []
        """What MongoDB says was pending (``recovery.pending_pushes``)."""

    def seeds(self, params) -> list[Push]:
        return [article(2), article(4)]

    async def recover(self) -> list[Push]:
        self.recoveries += 1
        return self.pending

    def enter(self, scope: RunScope) -> None:
        self.scopes.append(scope)


def lifecycle(client, cfg, seeder, reports, worker, mode="crawl") -> RunLifecycle:
    parts = Parts(client, cfg, worker)

    async def conclude(run_, stats, known):
        report = build_report(run_, stats, datetime.now(UTC))
        return report, decide(report, OutcomeConfig(), known)

    async def report(run_, report_, verdict):
        reports.append((run_.id, report_["counters"], verdict))

    return RunLifecycle(
        RunCoordinator(client, cfg.keys, worker_id=worker),
        window=parts.window, known=KnownArticles(), health=parts.health,
        counters=parts.counters, config=cfg, param_defaults=ParamDefaults(),
        mode=mode, seeds=seeder.seeds, recover=seeder.recover, enter=seeder.enter,
        conclude=conclude, report=report, wake=parts.wake,
    )  # fmt: skip


def test_one_run_seeded_once_adopted_by_all_and_ended_once(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        reports: list[Any] = []
        first, second = Seeder(), Seeder()
        first.pending = second.pending = [article(6), article(8), article(10)]
        a = lifecycle(client, cfg, first, reports, "a")
        b = lifecycle(client, cfg, second, reports, "b")
        await a.open({"since": "all", "max_articles": "5"})
        await b.open({})  # no arguments of its own: joins, with the run's arguments
        queue = RedisFrontier(client, cfg.keys)
        assert await queue.counts() == (5, 0, 0), "only the first worker's seeds and retries"
        assert (first.recoveries, second.recoveries) == (1, 1), "each may have begun it"
        [scope_a], [scope_b] = first.scopes, second.scopes
        assert scope_a.run_id == scope_b.run_id and scope_b.params == scope_a.params
        assert scope_b.params.since is None and scope_b.params.max_articles == 5
        assert a.max_articles == 5
        # Not idle while work is queued: the engine is kept open.
        await a.tick()
        assert a.keep_open() and a.idle_since is None
        # The queue drained: idle for the grace period, then one worker ends the run.
        leases = (await queue.pop(5, cfg.budget)).leases
        await queue.flush([], leases)
        for worker in (a, b):
            await worker.tick()
        assert a.keep_open(now=100.0) and a.idle_since == 100.0
        assert a.keep_open(now=100.0 + cfg.idle_grace)  # starts ending the run
        await settle(lambda: not a.ending)
        assert a.finished and not a.keep_open()
        assert len(reports) == 1 and reports[0][0] == scope_a.run_id
        assert a.outcome is not None and a.outcome.outcome == "ok"
        assert reports[0][2] == a.outcome and reports[0][1]["run/seeds"] == 2
        assert reports[0][1]["run/retries_recovered"] == 3
        await b.tick()
        assert b.state is not None and b.state.run is None
        # The other worker learns the outcome the ending worker published, and leaves with it.
        await b.end_run()
        assert b.finished and b.outcome == a.outcome
        [ended] = await b.coordinator.recent_outcomes()
        assert ended["id"] == scope_a.run_id and ended["outcome"] == "ok"
        for worker in (a, b):
            await worker.close()

    run(scenario, redis_url)


def test_a_worker_alone_ends_at_its_first_look_after_going_idle(redis_url, key_prefix) -> None:
    """The grace waits for the other workers' unflushed work, which reaches Redis with their
    heartbeats: alone, one fresh look at the cluster is enough; with a live peer, the grace."""

    async def drained(client: Redis, cfg: FrontierConfig, peer: bool) -> RunLifecycle:
        """Worker a's run, its queue drained, a with a look taken since it went idle."""
        a = lifecycle(client, cfg, Seeder(), reports, "a")
        await a.begin_run({"since": "all"})
        if peer:
            b = lifecycle(client, cfg, Seeder(), reports, "b")
            await b.begin_run({})
            await b.tick()  # its heartbeat: a live peer with nothing unflushed
        queue = RedisFrontier(client, cfg.keys)
        await queue.flush([], (await queue.pop(10, cfg.budget)).leases)
        await a.tick()
        assert a.state is not None and a.state.idle and a.state.peers == (1 if peer else 0)
        # That look was taken before the worker went idle: it proves nothing yet.
        assert a.keep_open(now=100.0) and not a.ending
        await a.tick()
        return a

    async def scenario(client):
        a = await drained(client, config(f"{key_prefix}:peer", redis_url, idle_grace=60), True)
        assert a.keep_open(now=100.01) and not a.ending, "a live peer: the grace holds"
        assert a.keep_open(now=160.0) and a.ending
        await settle(lambda: not a.ending)
        assert a.finished and len(reports) == 1
        a = await drained(client, config(f"{key_prefix}:alone", redis_url, idle_grace=60), False)
        assert a.keep_open(now=100.01) and a.ending, "alone: no grace to wait"
        await settle(lambda: not a.ending)
        assert a.finished and len(reports) == 2 and reports[1][2].outcome == "ok"
        # A standing worker alone with no run: the grace paces its look for a run request.
        cfg = config(f"{key_prefix}:standing", redis_url, idle_grace=60)
        w = lifecycle(client, cfg, Seeder(), reports, "w", mode="worker")
        await w.tick()
        assert w.state is not None and w.state.run is None and w.state.peers == 0
        assert w.keep_open(now=100.0) and not w.ending
        await w.tick()
        assert w.keep_open(now=100.01) and not w.ending
        assert w.keep_open(now=160.0) and w.ending
        await settle(lambda: not w.ending)
        assert not w.finished, "a standing worker stays"

    reports: list[Any] = []
    run(scenario, redis_url)


def test_counters_wait_when_redis_is_away(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        seeder = Seeder()
        live = lifecycle(client, cfg, seeder, [], "a")
        await live.begin_run({"since": "all"})
        scope = seeder.scopes[-1]
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        away = lifecycle(dead, cfg, Seeder(), [], "b")
        away.scope, away.counters = scope, live.counters
        live.counters.count("tass/run/articles", 3)
        await away.tick()
        assert away.state is None and not away.health.ok
        assert away.keep_open(), "an unknown state never ends a run"
        # Nothing was lost: the next heartbeat that reaches Redis adds them.
        await live.tick()
        assert int(await client.hget(cfg.keys.run_stats, "tass/run/articles")) == 3
        await dead.aclose()

    run(scenario, redis_url)


def test_a_crawl_whose_arguments_differ_from_the_open_runs_is_refused(
    redis_url, key_prefix
) -> None:
    """Issue 11 item 7: explicit arguments that differ from the open run's are refused with a
    message naming the difference and how to finish or abandon the run; nothing is queued."""
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        a = lifecycle(client, cfg, Seeder(), [], "a")
        await a.open({})  # an incremental run, uncapped
        queue = RedisFrontier(client, cfg.keys)
        assert await queue.counts() == (2, 0, 0)
        refused = lifecycle(client, cfg, Seeder(), [], "b")
        with pytest.raises(RunConflict) as caught:
            await refused.open({"since": "all", "max_articles": "50"})
        message = str(caught.value)
        run_id = a.scope.run_id
        assert f"run {run_id} (started " in message
        assert "since=all (the open run's: none (incremental))" in message
        assert "max_articles=50 (the open run's: 0)" in message
        assert "'scrapy crawl tass' without arguments" in message
        assert "'scrapy run abandon'" in message
        assert refused.scope is None, "it did not join"
        assert await queue.counts() == (2, 0, 0), "its seeds were not queued"
        # The same arguments as the run's, or only some of them, join it.
        same = lifecycle(client, cfg, Seeder(), [], "c")
        await same.open({"since": "", "sections": ""})
        assert same.scope is not None and same.scope.run_id == run_id
        for worker in (a, same, refused):
            await worker.close()

    run(scenario, redis_url)


def test_an_abandoned_run_ends_its_workers_with_its_outcome(redis_url, key_prefix) -> None:
    """``scrapy run abandon``'s steps on a run a worker is in: the run is gone from Redis with
    its queue moved aside (its articles' seen bits cleared), the worker's writes are refused,
    and the worker ends with the published ``failed`` outcome; the next run queues the
    abandoned articles again."""
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        seeder = Seeder()
        a = lifecycle(client, cfg, seeder, [], "a")
        await a.begin_run({"since": "all"})  # no heartbeat loop: the test ticks
        await a.tick()
        queue = RedisFrontier(client, cfg.keys)
        [lease] = (await queue.pop(1, cfg.budget)).leases
        scope = seeder.scopes[-1]
        abandoner = RunCoordinator(client, cfg.keys, worker_id="abandon")
        assert await abandoner.abandon("not-this-run") is None
        found = await abandoner.abandon(scope.run_id)
        assert found is not None
        gone, left, _ = found
        assert gone.id == scope.run_id and left == 2, "one pending, one leased"
        assert await abandoner.current() is None and await queue.counts() == (0, 0, 0)
        with pytest.raises(StateLost):  # the worker's old epoch is refused
            await queue.flush([article(9)], [lease], epoch=a.coordinator.epoch or "")
        reason = "abandoned: by a test"
        await abandoner.publish_outcome(gone, {"outcome": "failed", "reasons": [reason]})
        cleared = await abandoner.forget_abandoned(
            lambda m: int(json.loads(m)["url"].rsplit("/", 1)[1])
        )
        assert cleared == 2 and not await client.exists(cfg.keys.abandoned)
        await a.tick()
        assert a.finished and a.outcome is not None
        assert a.outcome.outcome == "failed" and a.outcome.reasons == (reason,)
        assert not a.window.holding()
        await a.close()
        # The next run begins from a clean state and may queue the abandoned articles again.
        b = lifecycle(client, cfg, Seeder(), [], "b")
        await b.open({})
        assert b.scope is not None and b.scope.run_id != scope.run_id
        assert await queue.counts() == (2, 0, 0), "the abandoned articles queued again"
        await b.close()

    run(scenario, redis_url)


def test_a_worker_that_finds_its_run_lost_by_another_ends_with_the_same_outcome(
    redis_url, key_prefix, caplog
) -> None:
    """Redis lost its state; worker a notices first and records the run as failed (in the
    emptied Redis too). Worker b, next, must not take that record for an abandon: it says
    REDIS STATE LOST as well and ends with a's outcome."""
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        reports: list[Any] = []
        a = lifecycle(client, cfg, Seeder(), reports, "a")
        b = lifecycle(client, cfg, Seeder(), reports, "b")
        await a.begin_run({})  # begin and join without heartbeat loops: the test ticks
        await b.begin_run({})
        await client.delete(*[k async for k in client.scan_iter(f"{key_prefix}:*")])
        await a.tick()
        assert a.finished and a.outcome is not None and a.outcome.outcome == "failed"
        assert a.outcome.reasons[0].startswith("redis_state_lost: Redis's epoch was")
        await b.tick()
        assert b.finished and b.outcome == a.outcome
        assert len(reports) == 1, "the run report is written by the worker that found it lost"
        for worker in (a, b):
            await worker.close()

    run(scenario, redis_url)
    lost = [r for r in caplog.records if "REDIS STATE LOST" in r.getMessage()]
    assert [r.levelname for r in lost] == ["CRITICAL", "CRITICAL"]
    assert "found by another worker" in lost[1].getMessage()
