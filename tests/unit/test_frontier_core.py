"""The frontier's Scrapy-free core against a real Redis: the lease window and the run lifecycle."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from crawler.frontier.config import FrontierConfig
from crawler.frontier.counters import Counters
from crawler.frontier.health import RedisHealth
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.known import KnownArticles
from crawler.frontier.lifecycle import RunLifecycle, RunScope
from crawler.frontier.queue import Budget, DeadLetter, Push, RedisFrontier
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
        budget=Budget(interval_ms=0.1, per_second=10_000, max_fetching=100, lease_ms=60_000),
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
            fetching=lambda: 0, on_leased=self.wake, max_articles=lambda: 0,
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
    budget = Budget(interval_ms=0.1, per_second=10_000, max_fetching=100, lease_ms=300)
    cfg = config(key_prefix, redis_url, budget=budget)

    async def scenario(client):
        parts = Parts(client, cfg)
        await parts.queue.flush([article(1)], [])
        parts.window.start()
        parts.window.want()
        await settle(lambda: len(parts.window.ready) == 1)
        await asyncio.sleep(0.5)  # past the lease: only renewal keeps it
        other = await parts.queue.pop(5, budget, "other", 0)
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

    def seeds(self, params) -> list[Push]:
        return [article(2), article(4)]

    def enter(self, scope: RunScope) -> None:
        self.scopes.append(scope)


def lifecycle(client, cfg, seeder, reports, worker, mode="crawl") -> RunLifecycle:
    parts = Parts(client, cfg, worker)

    def conclude(run_, stats):
        report = build_report(run_, stats, datetime.now(UTC))
        return report, decide(report, OutcomeConfig())

    async def report(run_, report_, verdict):
        reports.append((run_.id, report_["counters"], verdict))

    return RunLifecycle(
        RunCoordinator(client, cfg.keys, worker_id=worker),
        window=parts.window, known=KnownArticles(), health=parts.health,
        counters=parts.counters, config=cfg, param_defaults=ParamDefaults(),
        mode=mode, seeds=seeder.seeds, enter=seeder.enter, conclude=conclude, report=report,
        wake=parts.wake,
    )  # fmt: skip


def test_one_run_seeded_once_adopted_by_all_and_ended_once(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        reports: list[Any] = []
        first, second = Seeder(), Seeder()
        a = lifecycle(client, cfg, first, reports, "a")
        b = lifecycle(client, cfg, second, reports, "b")
        await a.open({"since": "all", "max_articles": "5"})
        await b.open({"since": "2026-01-01"})  # joins: the run's own arguments win
        queue = RedisFrontier(client, cfg.keys)
        assert await queue.counts() == (2, 0, 0), "only the first worker's seeds"
        [scope_a], [scope_b] = first.scopes, second.scopes
        assert scope_a.run_id == scope_b.run_id and scope_b.params == scope_a.params
        assert scope_b.params.since is None and scope_b.params.max_articles == 5
        assert a.max_articles == 5
        # Not idle while work is queued: the engine is kept open.
        await a.tick()
        assert a.keep_open() and a.idle_since is None
        # The queue drained: idle for the grace period, then one worker ends the run.
        leases = (await queue.pop(5, cfg.budget, "a", 0)).leases
        await queue.flush([], leases)
        scope_a.marks.reach("list:4954", datetime(2026, 11, 1, tzinfo=UTC))
        for worker in (a, b):
            await worker.tick()
        assert a.keep_open(now=100.0) and a.idle_since == 100.0
        assert a.keep_open(now=100.0 + cfg.idle_grace)  # starts ending the run
        await settle(lambda: not a.ending)
        assert a.finished and not a.keep_open()
        assert len(reports) == 1 and reports[0][0] == scope_a.run_id
        assert await a.coordinator.marks() == {"list:4954": 1793491200}
        assert a.outcome is not None and a.outcome.outcome == "ok"
        assert reports[0][2] == a.outcome and reports[0][1]["run/seeds"] == 2
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


def test_marks_and_counters_wait_when_redis_is_away(redis_url, key_prefix) -> None:
    cfg = config(key_prefix, redis_url)

    async def scenario(client):
        seeder = Seeder()
        live = lifecycle(client, cfg, seeder, [], "a")
        await live.begin_run({"since": "all"})
        scope = seeder.scopes[-1]
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        away = lifecycle(dead, cfg, Seeder(), [], "b")
        away.scope, away.counters = scope, live.counters
        scope.marks.reach("list:1", datetime(2026, 11, 2, tzinfo=UTC))
        live.counters.count("tass/run/articles", 3)
        await away.tick()
        assert away.state is None and not away.health.ok
        assert away.keep_open(), "an unknown state never ends a run"
        # Nothing was lost: the next heartbeat that reaches Redis adds them.
        await live.tick()
        assert int(await client.hget(cfg.keys.run_stats, "tass/run/articles")) == 3
        assert await client.hget(cfg.keys.run_marks, "list:1") is not None
        await dead.aclose()

    run(scenario, redis_url)
