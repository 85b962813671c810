"""The Prometheus endpoint of a worker (``prometheus_client``, the ``metrics`` extra).

Off by default: ``TASS_METRICS_ENABLED=true`` serves ``http://TASS_METRICS_ADDRESS:
TASS_METRICS_PORT/metrics`` (default ``0.0.0.0:9410``; each worker needs a port of its own
on one machine, ``0`` takes a free one and logs it) while the crawl runs: this worker's
counters and the cluster's gauges (``crawler.metrics``), plus the process's own (CPU, memory,
open files). The cluster's status is read from Redis every ``METRICS_REFRESH`` seconds; a scrape
never waits on Redis. A port that cannot be listened on stops the crawl at start with a
message naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler import defaults
from crawler.errors import ConfigurationError
from crawler.frontier.health import transient
from crawler.frontier.scheduler import frontier_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool
    address: str
    port: int
    refresh: float = defaults.METRICS_REFRESH

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        port = settings.getint("TASS_METRICS_PORT", defaults.TASS_METRICS_PORT)
        if not 0 <= port <= 65535:
            raise ValueError(f"TASS_METRICS_PORT={port!r}: must be a port, 0-65535")
        address = str(settings.get("TASS_METRICS_ADDRESS") or defaults.TASS_METRICS_ADDRESS)
        return cls(
            settings.getbool("TASS_METRICS_ENABLED", defaults.TASS_METRICS_ENABLED), address, port
        )


class PrometheusExtension:
    """Serves the worker's metrics (module docstring)."""

    def __init__(self, crawler: Crawler, config: MetricsConfig) -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
            from prometheus_client.platform_collector import PlatformCollector
            from prometheus_client.process_collector import ProcessCollector
        except ImportError as exc:
            raise ConfigurationError(
                "TASS_METRICS_ENABLED is on but prometheus_client is not installed: "
                "pip install -e '.[metrics]'"
            ) from exc
        from crawler.metrics import WorkerCollector

        self.crawler = crawler
        self.config = config
        self.status: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        registry.register(WorkerCollector(self._stats, lambda: self.status, self._worker))
        try:
            self.server, self.thread = start_http_server(
                config.port, config.address, registry=registry
            )
        except OSError as exc:
            raise ConfigurationError(
                f"TASS_METRICS_PORT={config.port}: cannot serve metrics on "
                f"{config.address}:{config.port}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self.server.server_port)
        logger.info("Metrics on http://%s:%d/metrics", config.address, self.port)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = MetricsConfig.from_settings(crawler.settings)
        if not config.enabled:
            raise NotConfigured("TASS_METRICS_ENABLED is off")
        extension = cls(crawler, config)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        if crawler.stats is not None:
            crawler.stats.set_value("tass/metrics/port", extension.port)
        return extension

    def spider_opened(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    def engine_stopped(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.server.shutdown()
        self.server.server_close()

    def _stats(self) -> dict[str, Any]:
        stats = self.crawler.stats
        return dict(stats.get_stats()) if stats is not None else {}

    def _worker(self) -> dict[str, int]:
        frontier = frontier_of(self.crawler)
        if frontier is None:
            return {}
        window = frontier.window
        return {"inflight": len(window.inflight), "ready": len(window.ready)}

    async def _refresh_loop(self) -> None:
        while True:
            frontier = frontier_of(self.crawler)
            if frontier is not None:
                try:
                    self.status = await frontier.status(runs=1)
                except Exception as exc:
                    if not transient(exc):
                        raise
            await asyncio.sleep(self.config.refresh)
