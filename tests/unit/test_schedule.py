"""The nightly schedule's decisions, with a clock the test controls and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler.frontier.keys import FrontierKeys
from crawler.frontier.run import RunCoordinator
from crawler.schedule import CronSchedule, Scheduler, ScheduleError

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # an hour before the 02:00 crawl


@pytest.fixture
def coordinator(redis_client, key_prefix) -> RunCoordinator:
    return RunCoordinator(redis_client, FrontierKeys(key_prefix), worker_id="test")


def scheduler(coordinator: RunCoordinator, expression: str = "0 2 * * *") -> Scheduler:
    return Scheduler(CronSchedule(expression), coordinator)


def requests(coordinator: RunCoordinator) -> int:
    return int(coordinator.server.llen(coordinator.keys.run_requests))


def test_malformed_schedule_names_the_setting() -> None:
    with pytest.raises(ScheduleError, match="CRAWL_SCHEDULE='every night'"):
        CronSchedule("every night")


def test_fresh_install_starts_at_once_then_waits_for_the_due_time(coordinator) -> None:
    s = scheduler(coordinator)
    first = s.step(T0)
    assert first.action == "started" and requests(coordinator) == 1
    coordinator.server.delete(coordinator.keys.run_requests)  # a worker took it
    assert s.step(T0 + timedelta(minutes=30)).action == "idle"
    due = s.step(T0 + timedelta(hours=1))  # 02:00
    assert due.action == "started" and due.due == datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    assert requests(coordinator) == 1
    assert s.step(T0 + timedelta(hours=1, minutes=1)).action == "idle"
    assert requests(coordinator) == 1


def test_a_run_still_going_is_not_started_twice_and_starts_once_it_ends(coordinator) -> None:
    s = scheduler(coordinator)
    s.step(T0)
    coordinator.server.delete(coordinator.keys.run_requests)
    run, seeder = coordinator.begin({})
    assert seeder
    at_two = T0 + timedelta(hours=1)
    assert s.step(at_two).action == "waiting"
    assert s.step(at_two + timedelta(minutes=5)).action == "waiting"
    assert requests(coordinator) == 0
    coordinator.finish(run)
    started = s.step(at_two + timedelta(minutes=10))
    assert started.action == "started" and started.due == at_two
    assert requests(coordinator) == 1


def test_missed_runs_coalesce_into_one_when_the_stack_comes_back(coordinator) -> None:
    s = scheduler(coordinator)
    s.step(T0)
    coordinator.server.delete(coordinator.keys.run_requests)
    back = T0 + timedelta(days=3, hours=5)  # down for three nights
    decision = s.step(back)
    assert decision.action == "started"
    assert decision.due == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert requests(coordinator) == 1
    assert s.step(back + timedelta(minutes=1)).action == "idle"
    assert requests(coordinator) == 1
    assert decision.wake_at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
