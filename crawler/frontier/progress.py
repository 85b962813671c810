"""What a worker tells the cluster about itself in each heartbeat: who it is, what it holds,
and how fast it works. Scrapy-free.

The heartbeat (``RunCoordinator.tick``, hash ``workers``) carries ``WorkerBeat.describe()``:
host, pid, mode, the run it works on, requests in flight and leases ready, the budget it was
started with, its totals (responses, articles stored, failures recorded) and its rates over the
last ``RATE_WINDOW`` seconds. ``scrapy status``, the progress line and the metrics read them
(``crawler.status``); a rate needs two samples, so each worker measures its own.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

RATE_WINDOW = 60.0
"""Seconds over which a worker's rates are measured."""

TOTALS = {
    "responses": "tass/frontier/responses",
    "articles": "tass/run/articles",
    "failures": "tass/run/failures",
}
"""The totals a heartbeat carries, by name, and the counter each one is."""


class RateMeter:
    """Rates per second of some totals over the last ``window`` seconds."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def sample(self, now: float, totals: Mapping[str, int]) -> dict[str, float]:
        """Record ``totals`` at ``now``; the rates since the oldest sample in the window."""
        self._samples.append((now, dict(totals)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        then, before = self._samples[0]
        span = now - then
        return {
            name: round((value - before.get(name, 0)) / span, 3) if span > 0 else 0.0
            for name, value in totals.items()
        }


class WorkerBeat:
    """The description of one worker that its heartbeat publishes."""

    def __init__(
        self,
        *,
        mode: str,
        totals: Mapping[str, int],
        inflight: Callable[[], int],
        ready: Callable[[], int],
        run_id: Callable[[], str | None],
        budget: Mapping[str, float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mode = mode
        self._totals = totals
        self._inflight = inflight
        self._ready = ready
        self._run_id = run_id
        self.budget = dict(budget)
        self._clock = clock
        self.started_at = datetime.fromtimestamp(clock(), UTC).isoformat()
        self.meter = RateMeter()

    def describe(self) -> dict[str, Any]:
        totals = {name: int(self._totals.get(key, 0)) for name, key in TOTALS.items()}
        rates = self.meter.sample(self._clock(), totals)
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "mode": self.mode,
            "started_at": self.started_at,
            "run": self._run_id(),
            "inflight": self._inflight(),
            "ready": self._ready(),
            "budget": self.budget,
            "totals": totals,
            "rates": {f"{name}_per_s": value for name, value in rates.items()},
        }
