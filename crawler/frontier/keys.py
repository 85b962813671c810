"""Every Redis key the crawler uses, derived from one prefix (``TASS_REDIS_PREFIX``)."""

from __future__ import annotations

from dataclasses import dataclass

from crawler import defaults


@dataclass(frozen=True, slots=True)
class FrontierKeys:
    """Key names under ``prefix``; tests give each crawl a prefix of its own."""

    prefix: str = defaults.TASS_REDIS_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or "%" in self.prefix or " " in self.prefix:
            raise ValueError(f"TASS_REDIS_PREFIX={self.prefix!r}: must be non-empty, no '%' or ' '")

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    # --- the queue ----------------------------------------------------------------------
    @property
    def pending(self) -> str:
        """Sorted set of requests ready to fetch, score -priority."""
        return self._key("pending")

    @property
    def leased(self) -> str:
        """Sorted set of requests a worker holds, score the lease deadline (ms)."""
        return self._key("leased")

    @property
    def delayed(self) -> str:
        """Sorted set of retries waiting for their backoff, score the ready time (ms)."""
        return self._key("delayed")

    @property
    def dead(self) -> str:
        """Hash URL → JSON of requests that kept failing (dead letters)."""
        return self._key("dead")

    @property
    def run_tally(self) -> str:
        """Hash of the current run's exact queue accounting, kept by the scripts themselves:
        ``enqueued`` (every entry queued), ``done`` (leases acknowledged), ``failed`` (leases
        that ended as dead letters). At every instant ``pending + delayed + leased + done +
        failed = enqueued``. Dropped when the run ends."""
        return self._key("run:tally")

    # --- feeding URLs (the scrapy-redis way) ----------------------------------------------
    @property
    def start_urls(self) -> str:
        """List of URLs (or ``{"url": ..., "meta": ...}`` JSON) pushed by users with
        ``LPUSH`` or ``scrapy enqueue``, as scrapy-redis's ``<spider>:start_urls``."""
        return self._key("start_urls")

    @property
    def feed_claimed(self) -> str:
        """Sorted set of start_urls entries a worker took and has not queued yet (member
        ``<seq>:<payload>``, score the claim's deadline, ms): a dead worker's claims return."""
        return self._key("start_urls:claimed")

    @property
    def feed_seq(self) -> str:
        """Counter numbering the claims (so equal payloads stay distinct members)."""
        return self._key("start_urls:seq")

    @property
    def feed_rejected(self) -> str:
        """List (newest first) of JSON records of payloads refused, with the reason."""
        return self._key("start_urls:rejected")

    # --- dedupe -------------------------------------------------------------------------
    @property
    def seen_articles(self) -> str:
        """Bitmap: bit N set once article id N was queued. Kept across runs."""
        return self._key("seen:articles")

    @property
    def run_seen_articles(self) -> str:
        """Bitmap of article ids queued in the current run (a refresh is fetched once a run)."""
        return self._key("run:seen:articles")

    @property
    def seen_hubs(self) -> str:
        """Set of hub request fingerprints queued in the current run; dropped when it ends."""
        return self._key("seen:hubs")

    # --- politeness ---------------------------------------------------------------------
    @property
    def sent(self) -> str:
        """Sorted set of the requests sent to the site in the last second (by send time)."""
        return self._key("rate:sent")

    @property
    def pause_until(self) -> str:
        """No request before this time (ms): set from ``Retry-After`` on 429/503."""
        return self._key("rate:pause_until")

    @property
    def fetching(self) -> str:
        """Hash worker id → "count:time(ms)": requests each worker has at the site."""
        return self._key("rate:fetching")

    @property
    def min_interval(self) -> str:
        """The smallest spacing between requests (ms) that robots.txt's Crawl-delay asks."""
        return self._key("rate:min_interval")

    # --- runs ---------------------------------------------------------------------------
    @property
    def run(self) -> str:
        """The current run: JSON with its id, start time and arguments; absent between runs."""
        return self._key("run")

    @property
    def run_articles(self) -> str:
        """Counter of new article requests queued in the current run (for ``max_articles``)."""
        return self._key("run:articles")

    @property
    def run_stats(self) -> str:
        """Hash of counters the workers add up during the current run."""
        return self._key("run:stats")

    @property
    def run_marks(self) -> str:
        """Hash of high-water marks reached in the current run (merged into ``marks`` at its
        successful end)."""
        return self._key("run:marks")

    @property
    def marks(self) -> str:
        """Hash of high-water marks (unix seconds, site clock) kept between runs: per listing
        feed, the newest item of its last complete paging; per sitemap, its newest lastmod."""
        return self._key("marks")

    @property
    def run_outcomes(self) -> str:
        """Hash run id → JSON of how the run ended (``outcome``, ``reasons``, times, args): set
        to ``{"outcome": null}`` by the script that ends the run, then filled in by the worker
        that ended it; the most recent ``RUN_OUTCOMES_KEPT`` runs are kept."""
        return self._key("runs:outcomes")

    @property
    def runs_ended(self) -> str:
        """Sorted set of the run ids in ``run_outcomes``, scored by their end (unix ms)."""
        return self._key("runs:ended")

    @property
    def run_requests(self) -> str:
        """List of run requests pushed by ``scrapy schedule`` for the workers."""
        return self._key("runs:requested")

    @property
    def schedule_state(self) -> str:
        """Hash with the scheduler's last due time handled."""
        return self._key("schedule")

    @property
    def workers(self) -> str:
        """Hash worker id → JSON heartbeat (unflushed work, time)."""
        return self._key("workers")
