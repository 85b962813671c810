"""Every default of the pipelines in one place.

``crawler.settings`` lets the environment override the ones that are settings (it refers to
these values rather than keeping a copy); crawlers built without the project settings, as in
the pipelines' tests, read them from here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

# --- MongoDB --------------------------------------------------------------------------------
MONGO_DATABASE = "tass"
MONGO_TIMEOUT = 10.0
"""``TASS_MONGO_TIMEOUT``: seconds to find the server or connect before one attempt fails."""
MONGO_RETRY_DEADLINE = 900.0
"""``TASS_MONGO_RETRY_DEADLINE``: seconds an operation is retried through an outage."""
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0

ARTICLES = "articles"
FAILURES = "failures"
REVISIONS = "revisions"

# --- clean ----------------------------------------------------------------------------------
SITE_TZ = timezone(timedelta(hours=3), "MSK")
"""Naive datetimes are read as Moscow time, UTC+03:00 all year since October 2014."""

# --- validate -------------------------------------------------------------------------------
VALIDATE_MIN_BODY = 200
MAX_TITLE_LENGTH = 400
EARLIEST_PUBLISHED = datetime(1990, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)

# --- dedupe ---------------------------------------------------------------------------------
DEDUPE_MIN_SIMILARITY = 0.75
"""``TASS_DEDUPE_MIN_SIMILARITY``: the MinHash similarity (estimated Jaccard of word 3-shingles)
from which two bodies are the same story. Measured on the replica: republished copies 0.875-0.98,
unrelated articles at most 0.59 (they share sentence templates; real unrelated pairs are lower).
"""
DEDUPE_RECENT_SIZE = 2048
"""Articles this process has seen recently, matched in memory while their store is pending."""
DEDUPE_CANDIDATE_LIMIT = 1000
"""Stored candidates matched per article at most (a band shared by very many bodies is noise)."""
DEDUPE_LOOKUP_BATCH_SIZE = 20
"""``TASS_DEDUPE_LOOKUP_BATCH_SIZE``: articles whose MongoDB candidate look-ups share one query.
Kept small because a server may test each fetched document against every key of the ``$in``
(SecantusDB does): a query of n articles then costs ~10 n^2 comparisons, and a store batch of
100 late checks in one query cost more than 100 single queries. 20 takes ~95 % of the saving."""
DEDUPE_LOOKUP_INTERVAL = 0.05
"""``TASS_DEDUPE_LOOKUP_INTERVAL``: seconds a look-up waits for others to share its query. A
worker handles tens of articles a second, so a window of a few milliseconds would batch
nothing; 50 ms is small beside the store's batching (``TASS_STORE_FLUSH_INTERVAL``)."""

# --- store ----------------------------------------------------------------------------------
STORE_BATCH_SIZE = 100
STORE_FLUSH_INTERVAL = 0.5
STORE_CLOSE_DEADLINE = 120.0
"""``TASS_STORE_CLOSE_DEADLINE``: seconds a closing store keeps retrying before it spills."""
