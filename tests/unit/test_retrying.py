"""The one retry helper: what it retries, how long it waits, and when it gives up."""

from __future__ import annotations

import asyncio
import time

import pytest

from crawler.retrying import RetryDeadlineExceeded, backoff, retry


class Flaky:
    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "done"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 0.5, 5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_retries_what_it_is_told_to_and_reports_each_failure() -> None:
    flaky = Flaky(3)
    told: list[str] = []
    result = asyncio.run(
        retry(
            flaky,
            what="test call",
            retry_on=lambda exc: isinstance(exc, ConnectionError),
            on_retry=lambda exc: told.append(str(exc)),
            initial=0.001,
            maximum=0.002,
        )
    )
    assert result == "done" and flaky.calls == 4
    assert told == ["failure 1", "failure 2", "failure 3"]


def test_other_errors_propagate_at_once() -> None:
    flaky = Flaky(1, KeyError)
    with pytest.raises(KeyError):
        asyncio.run(
            retry(flaky, what="x", retry_on=lambda e: isinstance(e, ConnectionError), initial=0)
        )
    assert flaky.calls == 1


def test_the_deadline_ends_it_with_the_last_error_chained() -> None:
    flaky = Flaky(10**6)
    end = time.monotonic() + 0.05
    with pytest.raises(RetryDeadlineExceeded, match="test call: still failing") as info:
        asyncio.run(
            retry(
                flaky,
                what="test call",
                retry_on=lambda exc: True,
                deadline=lambda: end,
                initial=0.01,
                maximum=0.01,
                jitter=False,
            )
        )
    assert isinstance(info.value.__cause__, ConnectionError)
    assert 2 <= flaky.calls <= 10
