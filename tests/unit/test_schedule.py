"""The nightly schedule's decisions, with a clock the test controls and a real Redis."""

from __future__ import annotations

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
