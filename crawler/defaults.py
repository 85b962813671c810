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
FRONTIER_FLUSH_DELAY = 0.05
"""Seconds a worker gathers queue writes into one script call."""
FRONTIER_CLOSE_DEADLINE = 60.0
"""Seconds a closing worker keeps trying to hand its queue writes to Redis."""

# --- Run outcomes (crawler.outcome) ---------------------------------------------------------
TASS_RUN_FAILED_SHARE = 0.5
"""A run is failed when this share of its URLs failed with network errors, 5xx, 429 or a
refusal, or this share of its article pages held no article (at least ``BLOCKED_MIN_PAGES``)."""
TASS_RUN_DEGRADED_SHARE = 0.05
"""A run is degraded when this share of its URLs failed, whatever the reason."""
BLOCKED_MIN_PAGES = 10
"""Article pages without an article needed before a run counts as blocked by them."""
OUTCOME_WAIT = 60.0
"""Seconds a worker that did not end its run waits for the outcome the ending worker
publishes, before it takes the run for failed."""
RUN_OUTCOMES_KEPT = 100
"""Outcomes of this many recent runs are kept in Redis (``scrapy status``, the scheduler)."""
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
LOGSTATS_INTERVAL = 60.0
"""Seconds between two cluster-wide progress lines (Scrapy's setting; 0: none)."""
TASS_METRICS_ENABLED = False
TASS_METRICS_ADDRESS = "0.0.0.0"
TASS_METRICS_PORT = 9410
METRICS_REFRESH = 5.0
"""Seconds between two reads of the cluster's status for the metrics."""

# --- Crawl scope -----------------------------------------------------------------------------
TASS_SINCE_DAYS = 7
TASS_LISTING_LIMIT = 100
TASS_MARK_OVERLAP_HOURS = 12.0
TASS_RECHECK_HOURS = 48.0
CRAWL_SCHEDULE = "0 2 * * *"

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
TASS_DEDUPE_LOOKUP_INTERVAL = 0.05
"""Seconds a look-up waits for others to share its query. A worker handles tens of articles a
second, so a window of a few milliseconds would batch nothing; 50 ms is small beside the
store's batching (``TASS_STORE_FLUSH_INTERVAL``)."""

# --- store -----------------------------------------------------------------------------------
TASS_STORE_BATCH_SIZE = 100
TASS_STORE_FLUSH_INTERVAL = 0.5
TASS_STORE_CLOSE_DEADLINE = 120.0
"""Seconds a closing store keeps retrying before it spills."""
