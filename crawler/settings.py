"""Scrapy settings for the tass crawler: defaults, environment overrides, component order.

This is the only module that reads ``os.environ``. Every environment variable has the same name
as the setting it sets; a malformed value stops the program with a message naming the variable.
Components validate their own settings again (``-s NAME=value`` bypasses this module).

Any variable may instead be read from a file: ``NAME_FILE=/path`` (as Docker and Kubernetes
secrets are mounted) gives ``NAME`` the file's text without its trailing line ends. Setting
both is an error; so is a file that cannot be read or is empty. Values that may hold a password
(the server URLs and the passwords) are never shown in a message, wherever they came from.

The passwords may be given apart from the URLs (``REDIS_PASSWORD``, ``MONGO_USER`` and
``MONGO_PASSWORD``, usually as ``*_FILE``, as the compose stack and the Kubernetes manifests
do): they are percent-encoded into ``REDIS_URL`` and ``MONGO_URI`` here, and a placeholder such
as ``change-me`` is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

# Every default lives in crawler/defaults.py (it also serves crawlers built in tests); this module
# only lets the environment override them. Imported under a lower-case name: Scrapy takes every
# upper-case name of this module for a setting.
from crawler import defaults

T = TypeVar("T")


class SettingError(ValueError):
    """An environment variable holds a value its setting cannot take."""


def _stop(message: str) -> NoReturn:
    raise SystemExit(f"tass-crawler: {message}") from SettingError(message)


def _raw(name: str) -> tuple[str, str] | None:
    """The raw value of ``name`` (from the environment or from ``name_FILE``) and its source."""
    value = os.environ.get(name, "")
    file_var = f"{name}_FILE"
    path = os.environ.get(file_var, "").strip()
    if not path:
        return (value, name) if value.strip() else None
    if value.strip():
        _stop(f"both {name} and {file_var} are set: set only one of them")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        _stop(f"setting {file_var}={path!r} cannot be read: {exc.strerror or exc}")
    except UnicodeDecodeError:
        _stop(f"setting {file_var}={path!r} is not UTF-8 text")
    text = text.rstrip("\n")  # the line end a file ends with, as `$(< file)` drops it
    if not text.strip():
        _stop(f"setting {file_var}={path!r} names an empty file")
    return text, f"{name} (read from {file_var}={path!r})"


def _env(name: str, default: T, parse: Callable[[str], T], what: str, *, secret: bool = False) -> T:
    """The setting ``name`` from the environment; ``secret``: parsed as given, never shown."""
    found = _raw(name)
    if found is None:
        return default
    raw, source = found
    try:
        return parse(raw if secret else raw.strip())
    except ValueError as exc:
        shown = "" if secret or source != name else f"={raw!r}"
        _stop(f"setting {source}{shown} is malformed: expected {what} ({exc})")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be >= 0")
    return value


def _share(raw: str) -> float:
    """A share (a similarity, a fraction of failures): 0 < x <= 1."""
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError("must be > 0 and <= 1")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("not a boolean")


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw.rstrip("/")


def _str(raw: str) -> str:
    return raw


def _server_url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        url = raw.strip()
        if not url.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return url

    return parse


# Values shipped in example files, and the like: never a real deployment's password.
_PLACEHOLDERS = ("change-me", "changeme", "change_me")
_PLACEHOLDER_WORDS = {"password", "secret", "example", "changeit"}


def _password(raw: str) -> str:
    if any(c.isspace() or not c.isprintable() for c in raw):
        raise ValueError("it holds whitespace or control characters")
    if raw.lower().startswith(_PLACEHOLDERS) or raw.lower() in _PLACEHOLDER_WORDS:
        raise ValueError("a placeholder, not a password: generate one with `make secrets`")
    return raw


def _with_credentials(
    url: str,
    *,
    url_name: str,
    password: str,
    password_name: str,
    user: str = "",
    user_name: str = "",
) -> str:
    """``url`` with ``user:password@`` put in front of its host (percent-encoded)."""
    if not password:
        if user:
            _stop(f"{user_name} is set but {password_name} is not: set both, or neither")
        return url
    if user_name and not user:
        _stop(f"{password_name} is set but {user_name} is not: set both, or neither")
    if not url:
        _stop(f"{password_name} is set but {url_name} is empty: set {url_name} to the server")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        _stop(f"{url_name} holds credentials and {password_name} is set too: keep them in one")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    return urlunsplit(parts._replace(netloc=credentials + parts.netloc))


BOT_NAME = "tass"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# --- The site ------------------------------------------------------------------------------
TASS_BASE_URL = _env("TASS_BASE_URL", defaults.TASS_BASE_URL, _url, "an http(s) URL")
USER_AGENT = _env(
    "USER_AGENT",
    defaults.USER_AGENT,
    _str,
    "a string",
)
ROBOTSTXT_OBEY = True

# --- Services ------------------------------------------------------------------------------
# Empty REDIS_URL / MONGO_URI: the crawl starts embedded servers under TASS_DATA_DIR.
# Passwords given apart (the compose stack's secret files) are put into the URLs here.
REDIS_URL = _with_credentials(
    _env("REDIS_URL", "", _server_url("redis://", "rediss://", "unix://"), "a URL", secret=True),
    url_name="REDIS_URL",
    password=_env("REDIS_PASSWORD", "", _password, "a password", secret=True),
    password_name="REDIS_PASSWORD",
)
MONGO_URI = _with_credentials(
    _env("MONGO_URI", "", _server_url("mongodb://", "mongodb+srv://"), "a URL", secret=True),
    url_name="MONGO_URI",
    password=_env("MONGO_PASSWORD", "", _password, "a password", secret=True),
    password_name="MONGO_PASSWORD",
    user=_env("MONGO_USER", "", _str, "a user name"),
    user_name="MONGO_USER",
)
MONGO_DATABASE = _env("MONGO_DATABASE", defaults.MONGO_DATABASE, _str, "a database name")
# How long one MongoDB attempt waits for the server, and how long an operation is retried
# through an outage before the store gives up (and spills its batch to TASS_DATA_DIR/spill).
TASS_MONGO_TIMEOUT = _env(
    "TASS_MONGO_TIMEOUT", defaults.TASS_MONGO_TIMEOUT, _positive_float, "seconds (> 0)"
)
TASS_MONGO_RETRY_DEADLINE = _env(
    "TASS_MONGO_RETRY_DEADLINE",
    defaults.TASS_MONGO_RETRY_DEADLINE,
    _positive_float,
    "seconds (> 0)",
)
TASS_DATA_DIR = _env("TASS_DATA_DIR", defaults.TASS_DATA_DIR, _str, "a folder path")

TASS_REDIS_PREFIX = _env("TASS_REDIS_PREFIX", defaults.TASS_REDIS_PREFIX, _str, "a key prefix")

# --- The shared frontier (crawler.frontier) -----------------------------------------------
ADDONS = {"crawler.addons.LocalServicesAddon": 0}
SCHEDULER = "crawler.frontier.scheduler.TassScheduler"
TASS_IDLE_GRACE = _env(
    "TASS_IDLE_GRACE", defaults.TASS_IDLE_GRACE, _non_negative_float, "seconds (>= 0)"
)
TASS_HEARTBEAT_INTERVAL = defaults.TASS_HEARTBEAT_INTERVAL
# A worker that dies holds its requests this long; live workers renew their leases.
TASS_LEASE_SECONDS = _env(
    "TASS_LEASE_SECONDS", defaults.TASS_LEASE_SECONDS, _positive_float, "seconds (> 0)"
)
COMMANDS_MODULE = "crawler.commands"
# Scrapy's in-memory stats collector, without the deprecation shim it runs on every read.
STATS_CLASS = "crawler.extensions.stats.StatsCollector"
# One cluster-wide progress line every LOGSTATS_INTERVAL in place of each process's LogStats;
# the Prometheus endpoint when TASS_METRICS_ENABLED; the items feed (TASS_FEED_ENABLED: new and
# revised articles pushed as stored to the Redis stream <prefix>:items).
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,
    "crawler.extensions.progress.ClusterProgressExtension": 0,
    "crawler.extensions.metrics.PrometheusExtension": 0,
    "pipelines.feed.ItemsFeed": 500,
    "crawler.extensions.garbage.GarbageCollection": 0,
}
TASS_GC_THRESHOLD = _env(
    "TASS_GC_THRESHOLD", defaults.TASS_GC_THRESHOLD, _non_negative_int, "allocations (>= 0)"
)
LOGSTATS_INTERVAL = _env(
    "LOGSTATS_INTERVAL", defaults.LOGSTATS_INTERVAL, _non_negative_float, "seconds (>= 0)"
)
TASS_METRICS_ENABLED = _env(
    "TASS_METRICS_ENABLED", defaults.TASS_METRICS_ENABLED, _bool, "true or false"
)
TASS_METRICS_ADDRESS = _env(
    "TASS_METRICS_ADDRESS", defaults.TASS_METRICS_ADDRESS, _str, "an address to listen on"
)
TASS_METRICS_PORT = _env("TASS_METRICS_PORT", defaults.TASS_METRICS_PORT, int, "a port number")

# --- Politeness ----------------------------------------------------------------------------
# The site's budget, shared by all workers through Redis: requests per second, and requests
# in flight at once, for the whole cluster (robots.txt Crawl-delay and Retry-After apply too).
CRAWL_RATE = _env("CRAWL_RATE", defaults.CRAWL_RATE, _positive_float, "requests per second (> 0)")
CRAWL_CONCURRENCY = _env(
    "CRAWL_CONCURRENCY", defaults.CRAWL_CONCURRENCY, _positive_int, "an integer > 0"
)
# Requests one worker process fetches at once (its share of the budget comes from Redis).
CONCURRENT_REQUESTS = _env(
    "CONCURRENT_REQUESTS", defaults.CONCURRENT_REQUESTS, _positive_int, "an integer > 0"
)
CONCURRENT_REQUESTS_PER_DOMAIN = CONCURRENT_REQUESTS
DOWNLOAD_DELAY = 0.0
DOWNLOAD_TIMEOUT = _env("DOWNLOAD_TIMEOUT", 30.0, _positive_float, "seconds (> 0)")
AUTOTHROTTLE_ENABLED = False
RETRY_ENABLED = True
RETRY_TIMES = _env("RETRY_TIMES", 3, int, "an integer")
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # the failure is recorded, not lost
# Retries wait in the shared frontier with exponential backoff (and at least Retry-After).
# Nothing from another host (crawler.offsite): no request for one is sent, and a redirect or
# meta refresh to one fails the request that was asked for; Scrapy's own offsite and redirect
# middlewares are replaced by these.
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawler.offsite.SiteOnlyMiddleware": 50,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.frontier.retry.FrontierRetryMiddleware": 550,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.offsite.SiteMetaRefreshMiddleware": 580,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.offsite.SiteRedirectMiddleware": 600,
}
# Article links this worker knows are queued are dropped as they leave the callback. Depth is
# not used (scope is decided by the spider), and its meta key would only grow queue members.
# An exception nobody expected while a response is handled becomes that URL's recorded failure
# (crawler.spiders.unexpected): first on the engine side, so it sees what all the others let by.
SPIDER_MIDDLEWARES = {
    "crawler.spiders.unexpected.UnexpectedErrorMiddleware": 10,
    "crawler.frontier.middleware.KnownArticlesMiddleware": 950,
    # The raw archive: each article item carries the response it came from to the store.
    "crawler.archive.ArchiveMiddleware": 900,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}
# A page yields at most one item (its article or its failure): Scrapy starts this many tasks per
# response to process its output (100 by default, a measurable share of the CPU per article).
# Two: one for the item, which waits for its store batch, one for the requests meanwhile
# (per response of three outputs, 97 µs of Scrapy's task fan-out at 8, 60 µs at 2).
CONCURRENT_ITEMS = 2
# Every request waits for a send slot of the cluster-wide budget (crawler.frontier.politeness).
DOWNLOAD_HANDLERS = {
    "http": "crawler.frontier.politeness.BudgetedDownloadHandler",
    "https": "crawler.frontier.politeness.BudgetedDownloadHandler",
}
TASS_RETRY_BACKOFF = _env(
    "TASS_RETRY_BACKOFF", defaults.TASS_RETRY_BACKOFF, _positive_float, "seconds (> 0)"
)
TASS_RETRY_BACKOFF_MAX = _env(
    "TASS_RETRY_BACKOFF_MAX", defaults.TASS_RETRY_BACKOFF_MAX, _positive_float, "seconds (> 0)"
)
# No sane article is 8 MB; the gzip bomb and the giant page stop here with a recorded reason.
DOWNLOAD_MAXSIZE = _env("DOWNLOAD_MAXSIZE", 8 * 1024 * 1024, _positive_int, "bytes (> 0)")
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = False
# Scrapy's two consoles into a running worker (its RemoteControl HTTP endpoint on localhost
# and the telnet console, each behind a token or password) execute code in the worker: off
# unless asked for, for debugging on a machine of one's own.
REMOTE_CONTROL_ENABLED = _env(
    "REMOTE_CONTROL_ENABLED", defaults.REMOTE_CONTROL_ENABLED, _bool, "true or false"
)
TELNETCONSOLE_ENABLED = _env(
    "TELNETCONSOLE_ENABLED", defaults.TELNETCONSOLE_ENABLED, _bool, "true or false"
)
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# --- Crawl scope ---------------------------------------------------------------------------
TASS_SINCE_DAYS = _env(
    "TASS_SINCE_DAYS", defaults.TASS_SINCE_DAYS, _positive_int, "a number of days (> 0)"
)
TASS_LISTING_LIMIT = _env(
    "TASS_LISTING_LIMIT", defaults.TASS_LISTING_LIMIT, _positive_int, "items per API page (> 0)"
)
# Incremental runs: the measured re-check (crawler.frontier.recheck): articles sampled a run,
# and the window for articles no lastmod can announce edits of.
TASS_RECHECK_SAMPLE = _env(
    "TASS_RECHECK_SAMPLE", defaults.TASS_RECHECK_SAMPLE, _non_negative_int, "articles (>= 0)"
)
TASS_RECHECK_HOURS = _env(
    "TASS_RECHECK_HOURS", defaults.TASS_RECHECK_HOURS, _non_negative_float, "hours (>= 0)"
)

# --- Run outcomes (crawler.outcome) ---------------------------------------------------------
TASS_RUN_FAILED_SHARE = _env(
    "TASS_RUN_FAILED_SHARE", defaults.TASS_RUN_FAILED_SHARE, _share, "a share in (0, 1]"
)
TASS_RUN_DEGRADED_SHARE = _env(
    "TASS_RUN_DEGRADED_SHARE", defaults.TASS_RUN_DEGRADED_SHARE, _share, "a share in (0, 1]"
)
if TASS_RUN_DEGRADED_SHARE > TASS_RUN_FAILED_SHARE:
    _stop(
        f"setting TASS_RUN_DEGRADED_SHARE={TASS_RUN_DEGRADED_SHARE} is above "
        f"TASS_RUN_FAILED_SHARE={TASS_RUN_FAILED_SHARE}: it must not be"
    )
CRAWL_SCHEDULE = _env("CRAWL_SCHEDULE", defaults.CRAWL_SCHEDULE, _str, "a cron expression")
# Budget amplification: links followed from one page that is not a listing (a hub, an article),
# and such links queued in one run by the whole cluster; the cuts are counted and logged.
TASS_MAX_PAGE_LINKS = _env(
    "TASS_MAX_PAGE_LINKS", defaults.TASS_MAX_PAGE_LINKS, _positive_int, "links per page (> 0)"
)
TASS_MAX_RUN_LINKS = _env(
    "TASS_MAX_RUN_LINKS", defaults.TASS_MAX_RUN_LINKS, _positive_int, "links per run (> 0)"
)

# --- Pipelines -----------------------------------------------------------------------------
ITEM_PIPELINES = {
    "pipelines.clean.CleanPipeline": 100,
    "pipelines.validate.ValidatePipeline": 200,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.store.StorePipeline": 400,
}
# Every article response that becomes a stored version is kept in `pages` (crawler.archive).
TASS_ARCHIVE_ENABLED = _env(
    "TASS_ARCHIVE_ENABLED", defaults.TASS_ARCHIVE_ENABLED, _bool, "true or false"
)
# scrapy reparse: the crawl's stages with the store swapped for the in-place re-extraction.
TASS_REPARSE_REPLACES = defaults.TASS_REPARSE_REPLACES
TASS_REPARSE_LEASE_SECONDS = _env(
    "TASS_REPARSE_LEASE_SECONDS",
    defaults.TASS_REPARSE_LEASE_SECONDS,
    _positive_float,
    "seconds (> 0)",
)
TASS_REPARSE_CHUNK_SIZE = _env(
    "TASS_REPARSE_CHUNK_SIZE", defaults.TASS_REPARSE_CHUNK_SIZE, _positive_int, "an integer > 0"
)
# The items feed (its extension is in EXTENSIONS above).
TASS_FEED_ENABLED = _env("TASS_FEED_ENABLED", defaults.TASS_FEED_ENABLED, _bool, "true or false")
TASS_FEED_MAXLEN = _env(
    "TASS_FEED_MAXLEN", defaults.TASS_FEED_MAXLEN, _positive_int, "a number of entries (> 0)"
)
TASS_STORE_BATCH_SIZE = _env(
    "TASS_STORE_BATCH_SIZE", defaults.TASS_STORE_BATCH_SIZE, _positive_int, "an integer > 0"
)
TASS_STORE_FLUSH_INTERVAL = _env(
    "TASS_STORE_FLUSH_INTERVAL",
    defaults.TASS_STORE_FLUSH_INTERVAL,
    _positive_float,
    "seconds (> 0)",
)
TASS_STORE_CLOSE_DEADLINE = _env(
    "TASS_STORE_CLOSE_DEADLINE",
    defaults.TASS_STORE_CLOSE_DEADLINE,
    _positive_float,
    "seconds (> 0)",
)
TASS_DEDUPE_NEAR_ENABLED = _env(
    "TASS_DEDUPE_NEAR_ENABLED", defaults.TASS_DEDUPE_NEAR_ENABLED, _bool, "true or false"
)


TASS_DEDUPE_MIN_SIMILARITY = _env(
    "TASS_DEDUPE_MIN_SIMILARITY",
    defaults.TASS_DEDUPE_MIN_SIMILARITY,
    _share,
    "a similarity in (0, 1]",
)
TASS_DEDUPE_LOOKUP_BATCH_SIZE = _env(
    "TASS_DEDUPE_LOOKUP_BATCH_SIZE",
    defaults.TASS_DEDUPE_LOOKUP_BATCH_SIZE,
    _positive_int,
    "an integer > 0",
)
TASS_DEDUPE_LOOKUP_INTERVAL = _env(
    "TASS_DEDUPE_LOOKUP_INTERVAL",
    defaults.TASS_DEDUPE_LOOKUP_INTERVAL,
    _positive_float,
    "seconds (> 0)",
)
TASS_DEDUPE_LATE_BATCH_SIZE = _env(
    "TASS_DEDUPE_LATE_BATCH_SIZE",
    defaults.TASS_DEDUPE_LATE_BATCH_SIZE,
    _positive_int,
    "an integer > 0",
)
TASS_VALIDATE_MIN_BODY = _env(
    "TASS_VALIDATE_MIN_BODY", defaults.TASS_VALIDATE_MIN_BODY, int, "a number of characters"
)


def _points(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 100:
        raise ValueError("must be > 0 and <= 100")
    return value


# The run report's drift alarm: an extraction figure that moves this many percentage points
# against the previous runs (a field's coverage, a signal's share) is a warning (crawler.drift).
TASS_DRIFT_THRESHOLD = _env(
    "TASS_DRIFT_THRESHOLD",
    defaults.TASS_DRIFT_THRESHOLD,
    _points,
    "percentage points in (0, 100]",
)

LOG_LEVEL = _env("LOG_LEVEL", "INFO", _str, "a log level")
FEED_EXPORT_ENCODING = "utf-8"
