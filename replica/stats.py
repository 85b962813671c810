"""Request counters for ``GET /__replica__/stats``: per page kind, per User-Agent, peak rate,
peak requests being answered at once."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any


class Stats:
    """Counts requests; ``max_rate_1s`` is the most requests seen in any one-second window,
    ``max_in_flight`` the most being answered at once (``enter``/``leave`` around each)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.agents: Counter[str] = Counter()
        self.challenged: Counter[str] = Counter()
        """Challenge pages answered, by path (``--fault-challenge``)."""
        self.total = 0
        self.max_rate = 0
        self.max_in_flight = self.in_flight  # a reset does not forget requests under way
        self._window: deque[float] = deque()

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def record(self, kind: str, agent: str) -> None:
        self.kinds[kind] += 1
        self.agents[agent] += 1
        self.total += 1
        now = time.monotonic()
        window = self._window
        window.append(now)
        edge = now - 1.0
        while window[0] <= edge:
            window.popleft()
        self.max_rate = max(self.max_rate, len(window))

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_kind": dict(sorted(self.kinds.items())),
            "by_user_agent": dict(sorted(self.agents.items())),
            "max_rate_1s": self.max_rate,
            "max_in_flight": self.max_in_flight,
            "challenged": dict(sorted(self.challenged.items())),
        }
