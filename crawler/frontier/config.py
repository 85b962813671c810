"""The frontier's settings, read and validated once (a bad value names its setting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from crawler import defaults
from crawler.drift import DriftConfig
from crawler.frontier.keys import FrontierKeys
from crawler.frontier.plain import PlainForm
from crawler.frontier.queue import Budget
from crawler.frontier.recheck import RecheckConfig
from crawler.frontier.redis import redis_url

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


RATE_MARGIN = 0.9
SITE_TTL_MARGIN = 10.0
"""Seconds past DOWNLOAD_TIMEOUT a request at the site still counts (then it lapses: its
worker died without saying it was done)."""


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
    max_run_links: int = defaults.TASS_MAX_RUN_LINKS
    """Links found on pages that are not listings queued in a run, at most (cluster-wide)."""
    drift: DriftConfig = field(default_factory=DriftConfig)
    """When the run report raises a drift alarm (``crawler.drift``)."""
    recheck: RecheckConfig = field(default_factory=RecheckConfig)
    """The measured re-check of incremental runs (``recheck``)."""
    rate: float = defaults.CRAWL_RATE
    """``CRAWL_RATE`` as set (the budget paces 10% under it)."""
    plain: PlainForm = field(default_factory=PlainForm)
    """The plain article request of the site at ``TASS_BASE_URL``, queued as bits (``plain``)."""

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
        download_timeout = positive("DOWNLOAD_TIMEOUT", settings.getfloat("DOWNLOAD_TIMEOUT"))
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
        max_run_links = int(
            positive(
                "TASS_MAX_RUN_LINKS",
                settings.getint("TASS_MAX_RUN_LINKS", defaults.TASS_MAX_RUN_LINKS),
            )
        )
        return cls(
            redis_url=url,
            keys=FrontierKeys(settings.get("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX)),
            budget=Budget(
                # 10% under the budget: requests reach the site with some jitter after their
                # slot, and a late one must not push a one-second window over CRAWL_RATE.
                interval_ms=1000.0 / (rate * RATE_MARGIN),
                per_second=max(1, int(rate)),
                concurrency=concurrency,
                lease_ms=int(lease * 1000),
                stale_ms=int(max(3 * heartbeat, 5.0) * 1000),
                site_ttl_ms=int((download_timeout + SITE_TTL_MARGIN) * 1000),
            ),
            prefetch=max(1, settings.getint("CONCURRENT_REQUESTS", defaults.CONCURRENT_REQUESTS)),
            idle_grace=grace,
            heartbeat=heartbeat,
            flush_delay=defaults.FRONTIER_FLUSH_DELAY,
            worker_stale=max(3 * heartbeat, lease),
            max_run_links=max_run_links,
            drift=DriftConfig.from_settings(settings),
            recheck=RecheckConfig.from_settings(settings),
            rate=rate,
            plain=PlainForm(settings.get("TASS_BASE_URL", defaults.TASS_BASE_URL)),
        )
