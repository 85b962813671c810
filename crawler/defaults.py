"""Every default of the crawler and its pipelines, in one place.

A name equal to a setting's name is that setting's default: ``crawler.settings`` lets the
environment override it (it refers to these values rather than keeping a copy), and every
component that reads the setting falls back to the same value here, so a crawler built without
the project settings (as in tests) behaves like the project. The other names are fixed limits
that no setting changes. Scrapy-free and import-free beyond the standard library, so every
package may import it (``pipelines`` depends on ``crawler``, never the reverse).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# --- The site --------------------------------------------------------------------------------
TASS_BASE_URL = "https://tass.com"
USER_AGENT = "tass-crawler/0.1 (+https://github.com/tass-crawler/tass-crawler; crawler@example.org)"
TASS_DATA_DIR = ".tass"

# --- MongoDB ---------------------------------------------------------------------------------
MONGO_DATABASE = "tass"
TASS_MONGO_TIMEOUT = 10.0
"""Seconds to find the server or connect before one attempt fails."""
TASS_MONGO_RETRY_DEADLINE = 900.0
"""Seconds an operation is retried through an outage."""

# --- Retries with backoff (crawler.retrying): the first wait, and the cap ----------------------
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0

# --- Consoles into a running worker (they execute code in it): off unless asked for ----------
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False

# --- The frontier ----------------------------------------------------------------------------
TASS_REDIS_PREFIX = "tass"
CRAWL_RATE = 2.0
"""Requests per second to the site, for the whole cluster (paced 10% under it)."""
CRAWL_CONCURRENCY = 8
"""Requests at the site at once, for the whole cluster."""
CONCURRENT_REQUESTS = 8
"""Requests one worker process handles at once."""
TASS_LEASE_SECONDS = 60.0
TASS_HEARTBEAT_INTERVAL = 0.5
TASS_IDLE_GRACE = 2.0
TASS_RETRY_BACKOFF = 1.0
TASS_RETRY_BACKOFF_MAX = 60.0
FRONTIER_FLUSH_DELAY = 0.25
"""Seconds a worker gathers queue writes into one script call, at most: they go at once when it
has no lease ready (it waits for work, which they may be). Measured at 1,000 articles: 0.05 s
made about one call every 50 ms the whole crawl long (~0.4 Redis round trips an article at
~50 articles/s); acknowledgements lose nothing by waiting (a lease lasts 60 s)."""
FRONTIER_CLOSE_DEADLINE = 60.0
"""Seconds a closing worker keeps trying to hand its queue writes to Redis."""
SITE_KEEP_SECONDS = 0.5
"""Seconds a worker trusts Redis's word that nobody waits for a place at the site: within
them a place its request gives back goes straight to its next request, with no round trip
(``crawler.frontier.siteslots``); past them it asks (and hears again). A waiter of another
worker waits at most this much longer than the line says."""
SITE_KEEP_AGE = 5.0
"""Seconds after Redis let a place in that a worker may still pass it on: its lapse in Redis
(``DOWNLOAD_TIMEOUT`` + 10 s after it was let in) stays past the end of the request that
takes it over."""

# --- Run outcomes (crawler.outcome) ---------------------------------------------------------
TASS_RUN_FAILED_SHARE = 0.5
"""A run is failed when this share of its URLs failed with network errors, 5xx, 429 or a
refusal, or this share of its article pages held no article (at least ``BLOCKED_MIN_PAGES``)."""
TASS_RUN_DEGRADED_SHARE = 0.05
"""A run is degraded when this share of its URLs failed, whatever the reason."""
BLOCKED_MIN_PAGES = 10
"""The fewest URLs a share is judged on: a run counts as blocked by article pages without an
article, or as failed or degraded by its share of failed URLs, only with at least this many
(a night whose only work was to try a few known-bad URLs again is not degraded)."""
OUTCOME_WAIT = 60.0
"""Seconds a worker that did not end its run waits for the outcome the ending worker
publishes, before it takes the run for failed."""
RUN_OUTCOMES_KEPT = 100
"""Outcomes of this many recent runs are kept in Redis (``scrapy status``, the scheduler)."""
RECOVERY_DEADLINE = 60.0
"""Seconds a worker about to begin a run tries to read from MongoDB what Redis lost: the stored
article ids when Redis is empty, the pending retries (``crawler.frontier.recovery``; MongoDB
away: the next run does it)."""
DRIFT_CHECK_DEADLINE = 20.0
"""Seconds the worker that ends a run tries to read the previous runs for the drift check
(MongoDB away: the report says the check was unavailable and raises no alarm); well under
``OUTCOME_WAIT``, since the outcome is published after it."""
STATUS_RUNS = 5
"""The last runs ``scrapy status`` shows."""

# --- URLs fed on <prefix>:start_urls (crawler.frontier.feed) -----------------------------------
FEED_INTERVAL = 1.0
"""Seconds a worker waits between two looks at ``start_urls`` when it is empty."""
FEED_BATCH = 100
"""Entries a worker takes from ``start_urls`` at once."""
FEED_REJECTED_KEPT = 1000
"""Refused payloads kept in ``start_urls:rejected`` (the newest)."""
FEED_PRIORITY = 1000
"""Added to a fed request's priority: what a user asks for is fetched first."""

# --- Progress and metrics (crawler.extensions) -------------------------------------------------
TASS_GC_THRESHOLD = 50_000
"""Net allocations between two runs of Python's youngest garbage collection once the spider is
open, what exists then being frozen (``crawler.extensions.garbage``); 0: Python's own 700."""
LOGSTATS_INTERVAL = 60.0
"""Seconds between two cluster-wide progress lines (Scrapy's setting; 0: none)."""
TASS_METRICS_ENABLED = False
TASS_METRICS_ADDRESS = "0.0.0.0"
TASS_METRICS_PORT = 9410
METRICS_REFRESH = 5.0
"""Seconds between two reads of the cluster's status for the metrics."""

# --- Crawl scope -----------------------------------------------------------------------------
TASS_SINCE_DAYS = 7
"""How far back an incremental run reads the listing feeds, and how old a sitemap entry may be to
count as new (known articles are fetched again when changed, however old)."""
TASS_LISTING_LIMIT = 100
TASS_MAX_PAGE_LINKS = 1000
"""Links followed from one page that is not a listing (a hub or an article page), at most,
in page order. Measured on the 3,000-article replica: its home page gives 72 links to follow,
the other hubs at most 35, an article page at most 8 (an article's own links: "Read also",
tags, the mark; its nav and sidebars are outside the article); the saved hub pages at most 72
(the archive calendar trap 168). The real site's pages are not known to be larger."""
TASS_MAX_RUN_LINKS = 20000
"""New links found on pages that are not listings queued in one run, at most, for the whole
cluster (articles already queued and hubs already walked this run do not count). Measured: a
whole-site run of the 3,000-article replica queues 1,768 (articles met in "Read also" before
their listing, theme and tag pages); a nightly run only spreads from its new and re-checked
articles, a few hundred on the real site. A whole-site run of the real site (~0.6 per article)
reaches the cap; what it cuts then still comes from the listings and sitemaps, because a link
refused is not marked seen."""
CRAWL_SCHEDULE = "0 2 * * *"

# --- The measured re-check of incremental runs (crawler.frontier.recheck) ----------------------
TASS_RECHECK_SAMPLE = 20
"""Articles the feeds say are unchanged that each incremental run fetches again, at random, to
measure how far the feeds' change signals can be trusted."""
TASS_RECHECK_HOURS = 72.0
"""The re-check window: articles without a sitemap lastmod are fetched again while their stored
version is younger than this; the widened window (after unannounced edits) starts at it."""
RECHECK_MAX_FACTOR = 8
"""The widened window grows to at most this many times ``TASS_RECHECK_HOURS``."""
RECHECK_CLEAN_RUNS = 3
"""Runs in a row whose re-checks find no unannounced edit before the window halves."""

# --- The run report's drift alarm (crawler.drift) ----------------------------------------------
TASS_DRIFT_THRESHOLD = 20.0
"""Percentage points an extraction figure (a field's coverage, a signal's share, the share of
disagreements) must move against the previous runs to raise a drift alarm."""
DRIFT_BASELINE_RUNS = 3
"""Earlier runs whose median figures are the baseline."""
DRIFT_MIN_ARTICLES = 50
"""Articles a run (and a field's answers, a feed's hints) needs before its figures are compared:
a figure over fewer moves by chance (a night on tass.com brings about 200)."""

# --- validate --------------------------------------------------------------------------------
TASS_VALIDATE_MIN_BODY = 200
MAX_TITLE_LENGTH = 400
EARLIEST_PUBLISHED = datetime(1990, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)

# --- dedupe ----------------------------------------------------------------------------------
TASS_DEDUPE_NEAR_ENABLED = True
TASS_DEDUPE_MIN_SIMILARITY = 0.75
"""The MinHash similarity (estimated Jaccard of word 3-shingles) from which two bodies are the
same story. Measured on the replica: republished copies 0.875-0.98, unrelated articles at most
0.59 (they share sentence templates; real unrelated pairs are lower)."""
DEDUPE_RECENT_SIZE = 2048
"""Articles this process has seen recently, matched in memory while their store is pending."""
DEDUPE_CANDIDATE_LIMIT = 1000
"""Stored candidates matched per article at most (a band shared by very many bodies is noise)."""
TASS_DEDUPE_LOOKUP_BATCH_SIZE = 20
"""Articles whose MongoDB candidate look-ups share one query. Kept small because a server may
test each fetched document against every key of the ``$in`` (SecantusDB does): a query of n
articles then costs ~10 n^2 comparisons, and a store batch of 100 late checks in one query cost
more than 100 single queries. 20 takes ~95 % of the saving."""
TASS_DEDUPE_LOOKUP_INTERVAL = 0.5
"""Seconds a look-up waits for others to share its query, at most (it goes at once when every
response in flight waits in a batch of the stages: waiting longer gains nothing). Raised from
0.2 s once that early start existed: at 4 workers on a loaded machine (~10 articles a second
each) 0.2 s made 0.36 reads an article. Earlier, measured on a loaded machine (~35
articles/s, 3,000 articles): 50 ms made 0.34 MongoDB reads an article, 0.2 s 0.17, at the
same CPU."""
TASS_DEDUPE_LATE_BATCH_SIZE = 100
"""Articles whose late checks (the match again once stored) share one query: a store batch
(``TASS_STORE_BATCH_SIZE``), whose acknowledgements come together. Larger than the first
look-ups' batch because every article has a late check unless its stored version is unchanged:
in batches of 20 the two look-ups alone made 0.1 reads an article."""

# --- the raw archive (crawler.archive) ---------------------------------------------------
TASS_ARCHIVE_ENABLED = True
"""Keep every article response that becomes a stored version in ``pages``."""
ARCHIVE_ZSTD_LEVEL = 3
"""zstd level of archived bodies (measured in bench/archive.py: higher levels cost several
times the CPU for a few percent less)."""

# --- scrapy reparse (crawler.reparse) ------------------------------------------------------
TASS_REPARSE_REPLACES = {"pipelines.store.StorePipeline": "pipelines.reextract.ReextractPipeline"}
"""The stages reparse runs in place of the crawl's (the store writes new versions; the
re-extraction stage writes only what changed, in place)."""
TASS_REPARSE_LEASE_SECONDS = 60.0
"""How long a worker holds a chunk without renewing it (a dead worker's chunk returns then)."""
TASS_REPARSE_CHUNK_SIZE = 200
"""Articles per chunk of a reparse job (what a worker leases at once)."""
REPARSE_CONCURRENCY = 100
"""Pages one reparse worker has in the stages at once. Their MongoDB calls batch together, so
this is at least ``TASS_STORE_BATCH_SIZE``: fewer would wait out the flush interval for every
batch (measured: 16 at once gave 33 articles/s, the interval's pace)."""
REPARSE_KEEP_SECONDS = 7 * 24 * 3600.0
"""A reparse job's Redis keys expire this long after its last change."""

# --- the items feed (pipelines.feed) --------------------------------------------------------
TASS_FEED_ENABLED = False
TASS_FEED_MAXLEN = 10_000
"""The items stream is trimmed to about this many entries (it shares Redis with the frontier:
10,000 articles of a few KB each, some 30 MB, about seven weeks of the site)."""

# --- store -----------------------------------------------------------------------------------
TASS_STORE_BATCH_SIZE = 100
TASS_STORE_FLUSH_INTERVAL = 2.0
"""Seconds a store batch waits to fill (``TASS_STORE_BATCH_SIZE``) at most; it goes at once
when every response in flight waits in it or in a dedupe look-up. A batch costs two or three
write commands (articles, pages, the failures clean-up) whatever its size, so at a worker's r
articles a second a batch that goes by time costs 2.3 / (r * interval) writes an article.
Four workers on two cores run ~20 articles a second each: 1 s made 0.054-0.069 writes an
article there (most batches went by time), 2 s 0.038, at the same rate (bench.counts). An
article then waits at most 2 s for its batch, and its lease (60 s) is held that much longer."""
TASS_STORE_CLOSE_DEADLINE = 120.0
"""Seconds a closing store keeps retrying before it spills."""
