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

    # --- dedupe -------------------------------------------------------------------------
    @property
    def seen_articles(self) -> str:
        """Bitmap: bit N set once article id N was queued. Kept across runs."""
        return self._key("seen:articles")

    @property
    def run_seen_articles(self) -> str:
        """Bitmap of article ids queued in the current run (a known article a feed's sighting
        fetches again is fetched once a run)."""
        return self._key("run:seen:articles")

    @property
    def run_announced_articles(self) -> str:
        """Bitmap of article ids some feed announced as changed in the current run (so a
        re-check fetch of one is not taken for an unannounced edit)."""
        return self._key("run:announced:articles")

    @property
    def run_rechecked(self) -> str:
        """Hash article id → "stamp:feed digest:kind" of the version a re-check of the current
        run replaced with an edited one (counted at the run's end as an unannounced edit
        unless a sighting announced it)."""
        return self._key("run:rechecked")

    @property
    def awaiting_articles(self) -> str:
        """Bitmap: bit N set while a request for article N is queued and not yet acknowledged
        (its feed hints are kept only then)."""
        return self._key("awaiting:articles")

    @property
    def hints(self) -> str:
        """Hash article id → the feed hint of an awaiting article (JSON by source,
        ``crawler.pages.hints``); deleted when the article's request is acknowledged."""
        return self._key("hints")

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
    def versions(self) -> str:
        """String of 64-bit records, one per article id, read and written with ``BITFIELD``:
        the version the crawler stored and what the feeds said of it (``versions``). Kept
        across runs."""
        return self._key("versions")

    @property
    def recheck(self) -> str:
        """Hash of the re-check's state between runs: the window (hours), the clean runs since
        it last moved (``recheck``), and the newest version stored (unix s, the site's clock)."""
        return self._key("recheck")

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
