"""Every Redis key the crawler uses, derived from one prefix (``TASS_REDIS_PREFIX``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FrontierKeys:
    """Key names under ``prefix``; tests give each crawl a prefix of its own."""

    prefix: str = "tass"

    def __post_init__(self) -> None:
        if not self.prefix or "%" in self.prefix or " " in self.prefix:
            raise ValueError(f"TASS_REDIS_PREFIX={self.prefix!r}: must be non-empty, no '%' or ' '")

    @property
    def requests(self) -> str:
        """Sorted set of pending requests (scrapy-redis priority queue)."""
        return f"{self.prefix}:requests"

    @property
    def seen_articles(self) -> str:
        """Bitmap: bit N set once article id N was queued. Kept across runs."""
        return f"{self.prefix}:seen:articles"

    @property
    def seen_hubs(self) -> str:
        """Set of hub request fingerprints queued in the current run; dropped when it ends."""
        return f"{self.prefix}:seen:hubs"

    @property
    def run(self) -> str:
        """The current run: JSON with its id and start time, absent between runs."""
        return f"{self.prefix}:run"

    @property
    def run_articles(self) -> str:
        """Counter of new article requests queued in the current run (for ``max_articles``)."""
        return f"{self.prefix}:run:articles"

    @property
    def run_requests(self) -> str:
        """List of run requests pushed by ``scrapy schedule`` for the workers."""
        return f"{self.prefix}:runs:requested"

    @property
    def schedule_state(self) -> str:
        """Hash with the scheduler's last due time handled."""
        return f"{self.prefix}:schedule"

    @property
    def workers(self) -> str:
        """Hash worker id → JSON heartbeat (busy count, time)."""
        return f"{self.prefix}:workers"
