"""Request-level dedupe in Redis: exact, small, and aware of what kind of URL it is.

- Article requests (``meta["article_id"]``) are remembered by id in a bitmap, one bit per id:
  exact (no false positives that could drop an article), a few hundred KB for the whole site,
  and kept across runs, so an article is fetched once unless a request says ``dont_filter``.
  A redirect continues under the claim of the request it came from.
  The same Lua call enforces the run's ``max_articles`` cap cluster-wide: an article over the
  cap is not marked seen, so a later run still fetches it.
- Every other request (hubs: section pages, listing API pages, feeds) is remembered by its
  fingerprint in a set that belongs to the current run and is dropped when the run ends, so the
  next run discovers new articles through the same hubs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Self

from scrapy.dupefilters import BaseDupeFilter

from crawler.frontier.keys import FrontierKeys

if TYPE_CHECKING:
    import redis
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# KEYS: seen bitmap, run counter. ARGV: id, cap (0 = none).
# Returns 1 when seen before, 2 when over the cap, 0 when new (and marks it).
_SEEN_ARTICLE = """
if redis.call('GETBIT', KEYS[1], ARGV[1]) == 1 then return 1 end
local cap = tonumber(ARGV[2])
if cap > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= cap then return 2 end
redis.call('SETBIT', KEYS[1], ARGV[1], 1)
redis.call('INCR', KEYS[2])
return 0
"""

MAX_ARTICLE_ID = 2**32 - 1  # Redis bitmaps address 2^32 bits


class TassDupeFilter(BaseDupeFilter):
    """Article ids in a persistent bitmap; hub fingerprints in a per-run set."""

    def __init__(
        self, server: redis.Redis, keys: FrontierKeys, crawler: Crawler, max_articles: int = 0
    ) -> None:
        self.server = server
        self.keys = keys
        self.crawler = crawler
        self.max_articles = max_articles
        self._seen_article = server.register_script(_SEEN_ARTICLE)
        self.debug = crawler.settings.getbool("DUPEFILTER_DEBUG")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:  # pragma: no cover - built by the scheduler
        raise TypeError("TassDupeFilter is built by TassScheduler, not on its own")

    def request_seen(self, request: Request) -> bool:
        article_id = request.meta.get("article_id")
        stats = self.crawler.stats
        if isinstance(article_id, int) and 0 < article_id <= MAX_ARTICLE_ID:
            if request.meta.get("redirect_times"):
                # The request this one was redirected from already claimed the id
                # (``/sport/<id>`` → ``/sports/<id>``, a non-primary section → the primary).
                return False
            verdict = int(
                self._seen_article(
                    keys=[self.keys.seen_articles, self.keys.run_articles],
                    args=[article_id, self.max_articles],
                )
            )
            if verdict == 2 and stats is not None:
                stats.inc_value("tass/frontier/over_max_articles")
            return verdict != 0
        fingerprint = self.crawler.request_fingerprinter.fingerprint(request)
        return int(self.server.sadd(self.keys.seen_hubs, fingerprint)) == 0

    def forget_article(self, article_id: int) -> None:
        """Clear an id's bit (a request that was queued but can never be fetched again)."""
        self.server.setbit(self.keys.seen_articles, article_id, 0)

    def log(self, request: Request, spider: Spider) -> None:
        if self.debug:
            logger.debug("Filtered duplicate request: %(request)s", {"request": request})
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("dupefilter/filtered")

    def close(self, reason: str = "") -> None:
        """Nothing to do: the seen state is shared by every worker and outlives this one."""
