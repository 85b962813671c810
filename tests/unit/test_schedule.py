"""The nightly schedule's decisions, with a clock the test controls and a real Redis."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.run import RunCoordinator
from crawler.schedule import CronSchedule, ScheduleError, Scheduler
from tests.unit.frontier_helpers import run

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # an hour before the 02:00 crawl


def scheduled(redis_url, key_prefix, scenario) -> None:
    """Run ``scenario(scheduler, coordinator)`` against the real Redis."""

    async def main(client):
        coordinator = RunCoordinator(client, FrontierKeys(key_prefix), worker_id="test")
        await scenario(Scheduler(CronSchedule("0 2 * * *"), coordinator), coordinator)

    run(main, redis_url)


async def requests(coordinator: RunCoordinator) -> int:
    return await coordinator.requested_runs()


def test_malformed_schedule_names_the_setting() -> None:
    with pytest.raises(ScheduleError, match="CRAWL_SCHEDULE='every night'"):
        CronSchedule("every night")


def test_fresh_install_starts_at_once_then_waits_for_the_due_time(redis_url, key_prefix) -> None:
    async def scenario(s, coordinator):
        first = await s.step(T0)
        assert first.action == "started" and await requests(coordinator) == 1
        await coordinator.pop_run_request()  # a worker took it
        assert (await s.step(T0 + timedelta(minutes=30))).action == "idle"
        due = await s.step(T0 + timedelta(hours=1))  # 02:00
        assert due.action == "started" and due.due == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        assert await requests(coordinator) == 1
        assert (await s.step(T0 + timedelta(hours=1, minutes=1))).action == "idle"
        assert await requests(coordinator) == 1

    scheduled(redis_url, key_prefix, scenario)


def test_a_run_still_going_is_not_started_twice(redis_url, key_prefix) -> None:
    async def scenario(s, coordinator):
        await s.step(T0)
        await coordinator.pop_run_request()
        current, seeder = await coordinator.begin({}, [])
        assert seeder
        at_two = T0 + timedelta(hours=1)
        assert (await s.step(at_two)).action == "waiting"
        assert (await s.step(at_two + timedelta(minutes=5))).action == "waiting"
        assert await requests(coordinator) == 0
        assert await coordinator.finish(current) is not None
        started = await s.step(at_two + timedelta(minutes=10))
        assert started.action == "started" and started.due == at_two
        assert await requests(coordinator) == 1

    scheduled(redis_url, key_prefix, scenario)


def test_missed_runs_coalesce_into_one_when_the_stack_comes_back(redis_url, key_prefix) -> None:
    async def scenario(s, coordinator):
        await s.step(T0)
        await coordinator.pop_run_request()
        back = T0 + timedelta(days=3, hours=5)  # down for three nights
        decision = await s.step(back)
        assert decision.action == "started"
        assert decision.due == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
        assert await requests(coordinator) == 1
        assert (await s.step(back + timedelta(minutes=1))).action == "idle"
        assert await requests(coordinator) == 1
        assert decision.wake_at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

    scheduled(redis_url, key_prefix, scenario)


def test_two_schedulers_stepping_at_once_request_one_run(redis_url, key_prefix) -> None:
    """The due check and the request are one script call: in 20 trials of two overlapping
    steps (two schedulers, two connections), each due time is requested exactly once."""

    async def main(client):
        from redis.asyncio import Redis

        other = Redis.from_url(redis_url)
        try:
            keys = FrontierKeys(key_prefix)
            schedule = CronSchedule("0 2 * * *")
            first = Scheduler(schedule, RunCoordinator(client, keys, worker_id="s1"))
            second = Scheduler(schedule, RunCoordinator(other, keys, worker_id="s2"))
            for day in range(20):
                now = T0 + timedelta(days=day, hours=1)  # each night's 02:00
                decisions = await asyncio.gather(first.step(now), second.step(now))
                assert sorted(d.action for d in decisions) == ["idle", "started"], day
                coordinator = first.coordinator
                assert await coordinator.requested_runs() == 1
                await coordinator.pop_run_request()  # a worker takes it; its run ends at once
        finally:
            await other.aclose()

    run(main, redis_url)


def test_the_scheduler_logs_every_run_outcome_once(redis_url, key_prefix, caplog) -> None:
    async def scenario(s, coordinator):
        for outcome in ("ok", "failed"):
            current, _ = await coordinator.begin({}, [])
            assert await coordinator.finish(current) is not None
            record = {"outcome": outcome, "reasons": [] if outcome == "ok" else ["site: down"]}
            await coordinator.publish_outcome(current, record)
        with caplog.at_level(logging.INFO, logger="crawler.schedule"):
            logged = await s.log_outcomes()
            assert [e["outcome"] for e in logged] == ["ok", "failed"]
            assert await s.log_outcomes() == []  # each once
        lines = [r.getMessage() for r in caplog.records]
        assert any(line.endswith("ended ok: no reasons") for line in lines)
        assert any(line.endswith("ended failed: site: down") for line in lines)

    scheduled(redis_url, key_prefix, scenario)
