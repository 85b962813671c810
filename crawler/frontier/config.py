"""The frontier's settings, read and validated once (a bad value names its setting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from crawler import defaults
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.queue import Budget
from crawler.frontier.redis import redis_url

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


RATE_MARGIN = 0.9


@dataclass(frozen=True, slots=True)
class FrontierConfig:
    redis_url: str
    keys: FrontierKeys
    budget: Budget
    prefetch: int
    """Leased requests a worker keeps ready beyond those it is fetching."""
    idle_grace: float
    """Seconds the cluster must look idle before a run is declared finished."""
    heartbeat: float
    """Seconds between heartbeats (and lease renewals at a third of the lease)."""
    flush_delay: float
    """Seconds to gather queue writes into one call."""
    worker_stale: float
    """A worker whose last heartbeat is older is taken for dead."""
    rate: float = defaults.CRAWL_RATE
    """``CRAWL_RATE`` as set (the budget paces 10% under it)."""

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        def positive(name: str, value: float) -> float:
            if not value > 0:
                raise ValueError(f"{name}={value!r}: must be > 0")
            return value

        url = redis_url(settings)
        rate = positive("CRAWL_RATE", settings.getfloat("CRAWL_RATE", defaults.CRAWL_RATE))
        concurrency = int(
            positive(
                "CRAWL_CONCURRENCY",
                settings.getint("CRAWL_CONCURRENCY", defaults.CRAWL_CONCURRENCY),
            )
        )
        lease = positive(
            "TASS_LEASE_SECONDS",
            settings.getfloat("TASS_LEASE_SECONDS", defaults.TASS_LEASE_SECONDS),
        )
        heartbeat = positive(
            "TASS_HEARTBEAT_INTERVAL",
            settings.getfloat("TASS_HEARTBEAT_INTERVAL", defaults.TASS_HEARTBEAT_INTERVAL),
        )
        grace = settings.getfloat("TASS_IDLE_GRACE", defaults.TASS_IDLE_GRACE)
        if grace < 0:
            raise ValueError(f"TASS_IDLE_GRACE={grace!r}: must be >= 0")
        return cls(
            redis_url=url,
            keys=FrontierKeys(settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX)),
            budget=Budget(
                # 10% under the budget: requests reach the site with some jitter after their
                # slot, and a late one must not push a one-second window over CRAWL_RATE.
                interval_ms=1000.0 / (rate * RATE_MARGIN),
                per_second=max(1, int(rate)),
                max_fetching=concurrency,
                lease_ms=int(lease * 1000),
                stale_ms=int(max(3 * heartbeat, 5.0) * 1000),
            ),
            prefetch=max(1, settings.getint("CONCURRENT_REQUESTS", defaults.CONCURRENT_REQUESTS)),
            idle_grace=grace,
            heartbeat=heartbeat,
            flush_delay=defaults.FRONTIER_FLUSH_DELAY,
            worker_stale=max(3 * heartbeat, lease),
            rate=rate,
        )
