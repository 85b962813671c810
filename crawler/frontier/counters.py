"""This worker's frontier counters: into the crawler's stats now, into the run's at each tick.

``count(key, n)`` adds to the local stats (``sink``, Scrapy's ``stats.inc_value`` in a crawl)
and to the deltas not yet added to the run's counters in Redis. The run lifecycle ``take``s the
deltas at each heartbeat and ``restore``s them when Redis did not take them, so no count is lost
or added twice.
"""

from __future__ import annotations

from collections.abc import Callable


class Counters:
    """Counts since the last ``take``, mirrored into ``sink``."""

    def __init__(self, sink: Callable[[str, int], object] | None = None) -> None:
        self._sink = sink
        self._deltas: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        """Every count of this worker since it started (its heartbeat's rates come from it)."""

    def count(self, key: str, value: int = 1) -> None:
        if not value:
            return
        if self._sink is not None:
            self._sink(key, value)
        self._deltas[key] = self._deltas.get(key, 0) + value
        self.totals[key] = self.totals.get(key, 0) + value

    def take(self) -> dict[str, int]:
        """The counts since the last call, to add to the run's."""
        deltas, self._deltas = self._deltas, {}
        return deltas

    def restore(self, deltas: dict[str, int]) -> None:
        """Counts that could not be added to the run's (Redis away) wait for the next try."""
        for key, value in deltas.items():
            self._deltas[key] = self._deltas.get(key, 0) + value
