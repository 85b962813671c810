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
    def pending_plain(self) -> str:
        """Hash of the plain article requests ready to fetch, kept as bits
        (``crawler.frontier.plain``): ``form`` (``PlainForm.wire``), ``total`` (how many),
        ``n:<priority>`` (how many at that priority) and ``at:<priority>`` (the lowest byte of
        its bits that may hold one). Gone with the last of them."""
        return self._key("pending:plain")

    @property
    def pending_plain_sections(self) -> str:
        """String of 4-bit section codes by article id (``BITFIELD u4 #<id>``) of the plain
        article requests ready to fetch."""
        return self._key("pending:plain:sections")

    def pending_plain_ids(self, priority: int) -> str:
        """Bitmap: bit N set while the plain request of article N waits at ``priority``. The
        scripts name it as ``pending_plain .. ':ids:' .. priority``."""
        return f"{self.pending_plain}:ids:{priority}"

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

    @property
    def run_failed_articles(self) -> str:
        """Hash article id → dead letters it left in the current run (at 2, it is not queued
        again in the run)."""
        return self._key("run:failed:articles")

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
    def at_site(self) -> str:
        """Sorted set of the requests at the site now, cluster-wide (token → lapse time, ms):
        at most ``CRAWL_CONCURRENCY`` (``lua.SITE``)."""
        return self._key("rate:at_site")

    @property
    def site_waiting(self) -> str:
        """Sorted set of the requests waiting to go to the site (token → when it first asked,
        ms): they get in in that order, whichever worker they are from."""
        return self._key("rate:site_waiting")

    @property
    def site_polled(self) -> str:
        """Hash waiting token → when it last asked (ms): a waiter that stopped asking (its
        worker died) is dropped from the line."""
        return self._key("rate:site_polled")

    @property
    def min_interval(self) -> str:
        """The smallest spacing between requests (ms) that robots.txt's Crawl-delay asks."""
        return self._key("rate:min_interval")

    # --- runs ---------------------------------------------------------------------------
    @property
    def epoch(self) -> str:
        """A token set once Redis holds the frontier's state (by the first run's BEGIN). A
        worker that finds it gone or changed knows Redis lost its state (FLUSHALL, a restart
        without persistence) and the run it works on with it; queue writes of an older epoch
        are refused."""
        return self._key("epoch")

    @property
    def run(self) -> str:
        """The current run: JSON with its id, start time and arguments; absent between runs."""
        return self._key("run")

    @property
    def run_articles(self) -> str:
        """Counter of new article requests queued in the current run (for ``max_articles``)."""
        return self._key("run:articles")

    @property
    def run_links(self) -> str:
        """Counter of links found on pages that are not listings queued in the current run
        (for ``TASS_MAX_RUN_LINKS``)."""
        return self._key("run:links")

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
    def abandoned(self) -> str:
        """Sorted set of the requests an abandoned run left (``scrapy run abandon``), kept
        until their articles' seen bits are cleared."""
        return self._key("runs:abandoned")

    @property
    def abandoned_articles(self) -> str:
        """Bitmap of the article ids whose plain requests an abandoned run left queued, kept
        until their seen bits are cleared (as ``abandoned``)."""
        return self._key("runs:abandoned:articles")

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

    # --- beside the crawl -----------------------------------------------------------------
    @property
    def items_feed(self) -> str:
        """Stream of new and revised articles as they are stored (``pipelines.feed``)."""
        return self._key("items")

    def reparse(self, job: str) -> ReparseKeys:
        """The keys of one ``scrapy reparse`` job (``crawler.reparse.job``)."""
        return ReparseKeys(self._key(f"reparse:{job}"))


@dataclass(frozen=True, slots=True)
class ReparseKeys:
    """The keys of one reparse job, under ``<prefix>:reparse:<job id>``."""

    base: str

    @property
    def state(self) -> str:
        """Hash: ``spec`` (JSON), ``status`` (seeding, ready, done), ``total`` (articles)."""
        return f"{self.base}:state"

    @property
    def seeding(self) -> str:
        """The seeding lock: the token of the process listing the job's chunks (expires)."""
        return f"{self.base}:seeding"

    @property
    def todo(self) -> str:
        """Sorted set of chunks (``lo:hi`` article id ranges) not done, score the lease
        deadline (ms; 0: free)."""
        return f"{self.base}:todo"

    @property
    def counts(self) -> str:
        """Hash of the job's counters, added up by every worker as it finishes a chunk."""
        return f"{self.base}:counts"

    @property
    def failed(self) -> str:
        """Hash article id → the reason its archived page no longer extracts."""
        return f"{self.base}:failed"

    def all(self) -> tuple[str, ...]:
        return (self.state, self.seeding, self.todo, self.counts, self.failed)
