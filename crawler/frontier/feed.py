"""URLs fed the scrapy-redis way: ``LPUSH <prefix>:start_urls URL`` (or ``scrapy enqueue``).

Users of scrapy-redis push work onto ``<spider>:start_urls``: a plain URL, or a JSON payload
``{"url": ..., "meta": {...}}`` (scrapy-redis's format; ``"method": "GET"`` is accepted, other
methods and form data are not: the site is only read). Here the list is
``<prefix>:start_urls`` (``FrontierKeys.start_urls``) and every entry goes through the same
frontier guarantees as any other request:

- *Claim* (``lua.CLAIM_FEED``): a worker takes up to ``FEED_BATCH`` entries as claims with a
  deadline; a worker that dies before queueing them loses nothing (its claims return to the
  list). Entries are taken while a run is going; a standing worker (``-a mode=worker``) with no
  run takes them and begins a run of its own for them (``-a seeds=none``: no site seeds).
- *Queue* (``lua.FEED``): the requests made from the claims are queued, the claims dropped and
  the payloads refused recorded, in one script call. An article URL is queued as a *refresh*:
  fetched even if an earlier run stored it, once per run however often it is fed, and its
  links are not followed (a fed article is what was asked for); a hub once per run, as any
  hub, and it leads on to its articles as in any run. Fed requests come first in the queue
  (``FEED_PRIORITY``) and never count against ``max_articles``' cap. A run does not end while
  fed entries wait or are claimed (``lua.FINISH``), so a URL fed during a run is fetched in it.
- *Refuse*: a payload that is not a URL of the site, not a page the crawler reads, not UTF-8,
  not well-formed JSON, or whose ``meta`` sets keys the crawler sets itself is not dropped in
  silence: it is kept in ``<prefix>:start_urls:rejected`` (newest first, the last
  ``FEED_REJECTED_KEPT``) with its reason, logged, counted (``tass/feed/rejected/<reason>``)
  and shown by ``scrapy status``.

scrapy-redis itself is not used for this (it stays a ``bench`` dependency): its
``make_request_from_data`` logs and drops a payload without a URL, queues everything with
``dont_filter`` past any dedupe, posts form data, and pops the list without a claim, so a
worker killed between the pop and the queue loses the URL. Its key and payload format are kept.

Scrapy-free: the scheduler adapter gives ``FeedIntake`` the way to turn an entry into a queue
push (the spider's ``fed_request`` and the codec) and the way to begin a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crawler import defaults
from crawler.frontier import lua
from crawler.frontier.health import transient
from crawler.frontier.queue import StateLost, pushes_args
from crawler.frontier.versions import SIGHTING_META
from crawler.retrying import retry

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from crawler.frontier.counters import Counters
    from crawler.frontier.health import RedisHealth
    from crawler.frontier.keys import FrontierKeys
    from crawler.frontier.queue import Push
    from crawler.urls import SiteUrls

logger = logging.getLogger(__name__)

FedKind = Literal["article", "hub", "rss", "sitemap_index", "sitemap"]

FED_META = "fed"
"""Meta key of a request made from a fed URL (the spider's ``fed_request`` sets it): a fed
article is queued as a refresh (``Push.refresh``), and its links are not followed."""

RESERVED_META = frozenset(
    {"kind", "article_id", "seed", "section_id", "exclude", "head", FED_META, SIGHTING_META}
    # codec's DELAY_META, VIA_META and HINTS_META (codec imports Scrapy; this module does not)
    | {"frontier_delay", "frontier_via", "feed_hints"}
)
"""Meta keys the crawler sets itself: a payload may not set them."""

MAX_PAYLOAD = 8192
"""Bytes of one payload at most."""


class FeedRejected(ValueError):
    """A fed payload the crawler will not queue; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One fed URL, with the meta its payload gave."""

    url: str
    meta: Mapping[str, Any] = field(default_factory=dict)


def parse_payload(raw: bytes | str) -> FeedEntry:
    """A start_urls entry as scrapy-redis reads it: a plain URL, or a JSON object with ``url``
    and optional ``meta`` (and ``method``: only ``GET``). ``FeedRejected`` otherwise."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_PAYLOAD:
            raise FeedRejected("too_long", f"{len(raw)} bytes (at most {MAX_PAYLOAD})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FeedRejected("not_utf8", str(exc)) from exc
    else:
        text = raw
    text = text.strip()
    if not text.startswith(("{", "[")):
        if not text or any(c.isspace() or not c.isprintable() for c in text):
            raise FeedRejected("not_a_url", "a plain entry must be one URL")
        return FeedEntry(text)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FeedRejected("bad_json", str(exc)) from exc
    if not isinstance(data, dict):
        raise FeedRejected("bad_json", "not a JSON object")
    url, meta = data.pop("url", None), data.pop("meta", None) or {}
    method = str(data.pop("method", "GET"))
    if not isinstance(url, str) or not url.strip():
        raise FeedRejected("no_url", "the payload has no 'url' string")
    if method.upper() != "GET":
        raise FeedRejected("bad_method", f"method {method!r}: the crawler only reads (GET)")
    if data:
        raise FeedRejected("unknown_keys", f"keys {sorted(data)} (form data is not sent)")
    if not isinstance(meta, dict):
        raise FeedRejected("bad_meta", "'meta' must be a JSON object")
    reserved = sorted(RESERVED_META.intersection(meta))
    if reserved:
        raise FeedRejected("reserved_meta", f"meta keys {reserved} are the crawler's own")
    return FeedEntry(url.strip(), meta)


def fed_kind(urls: SiteUrls, url: str) -> tuple[str, FedKind]:
    """The canonical URL and what kind of page a fed URL is (``FeedRejected`` when it is not
    one the crawler reads: another host, an API endpoint, a static file)."""
    canonical = urls.canonical(url) if url.startswith(("http://", "https://")) else None
    if canonical is None:
        raise FeedRejected("not_site_url", f"{url[:200]!r} is not a URL of {urls.base}")
    kind = urls.url_kind(canonical)
    if kind == "article":
        return canonical, "article"
    if kind in ("section", "theme_or_tag", "home"):
        return canonical, "hub"
    if kind == "rss":
        return canonical, "rss"
    if kind == "sitemap":
        index = canonical == urls.sitemap_index_url()
        return canonical, "sitemap_index" if index else "sitemap"
    raise FeedRejected("not_crawlable", f"{canonical} is not a page the crawler reads ({kind})")


def rejection_record(raw: bytes, exc: FeedRejected, worker: str, at: float) -> str:
    payload = raw[:500].decode("utf-8", errors="replace")
    record = {"payload": payload, "reason": exc.reason, "detail": exc.detail[:500]}
    return json.dumps({**record, "worker": worker, "at": at})


@dataclass(frozen=True, slots=True)
class Claim:
    """Entries a worker took from start_urls (``<seq>:<payload>`` members)."""

    running: bool
    """Whether a run was going when they were taken."""
    returned: int
    """Claims of dead workers put back on the list by this call."""
    members: list[bytes]


async def feed_urls(client: Redis, keys: FrontierKeys, payloads: list[str]) -> None:
    """Put ``payloads`` (URLs or JSON payloads) on ``start_urls`` in one call, to be taken in
    the order given (LPUSH puts the last first and the workers LPOP: pushed reversed)."""
    await client.lpush(keys.start_urls, *reversed(payloads))


class FeedQueue:
    """The two script calls of the feed."""

    def __init__(self, client: Redis, keys: FrontierKeys) -> None:
        self.keys = keys
        self._claim = client.register_script(lua.CLAIM_FEED)
        self._feed = client.register_script(lua.FEED)
        self.round_trips = 0

    async def claim(self, count: int, claim_ms: int, *, may_begin: bool) -> Claim:
        k = self.keys
        self.round_trips += 1
        raw = await self._claim(
            keys=[k.start_urls, k.feed_claimed, k.feed_seq, k.run],
            args=[count, claim_ms, "1" if may_begin else "0"],
        )
        return Claim(bool(int(raw[0])), int(raw[1]), [bytes(m) for m in raw[2:]])

    async def feed(
        self, pushes: list[Push], claims: list[bytes], rejections: list[str], *, epoch: str = ""
    ) -> tuple[int, int]:
        """Queue ``pushes``, drop ``claims``, record ``rejections``: (queued, duplicates).
        ``StateLost`` when ``epoch`` is no longer Redis's (empty: not checked); the claims
        then stay, and return to the list at their deadline."""
        k = self.keys
        args: list[Any] = [epoch, *pushes_args(pushes), len(claims), *claims, len(rejections)]
        args += [*rejections, defaults.FEED_REJECTED_KEPT]
        self.round_trips += 1
        result = await self._feed(
            keys=[
                k.pending, k.delayed, k.seen_articles, k.seen_hubs, k.run_articles,
                k.run_seen_articles, k.run_links, k.awaiting_articles, k.hints,
                k.run_failed_articles, k.versions, k.run_announced_articles, k.run_rechecked,
                k.run_tally, k.feed_claimed, k.feed_rejected, k.epoch,
            ],
            args=args,
        )  # fmt: skip
        if int(result[0]) < 0:
            raise StateLost(f"Redis no longer holds epoch {epoch}: its state was lost")
        queued, filtered = result
        return int(queued), int(filtered)


class FeedIntake:
    """One worker's intake of fed URLs (module docstring)."""

    def __init__(
        self,
        queue: FeedQueue,
        *,
        worker_id: str,
        health: RedisHealth,
        counters: Counters,
        claim_ms: int,
        build: Callable[[FeedEntry], Push],
        may_claim: Callable[[], bool],
        may_begin: Callable[[], bool],
        begin: Callable[[], Awaitable[None]],
        epoch: Callable[[], str | None] = lambda: None,
        interval: float = defaults.FEED_INTERVAL,
        batch: int = defaults.FEED_BATCH,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.health = health
        self.counters = counters
        self.claim_ms = claim_ms
        self._build = build
        self._may_claim = may_claim
        self._may_begin = may_begin
        self._begin = begin
        self._epoch = epoch
        self.interval = interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="tass-feed")

    async def close(self) -> None:
        """Stop taking entries; claims not queued yet return to the list at their deadline."""
        # A cancellation that lands inside a Redis call can come back out of it as a connection
        # error, which the loop takes for an outage: it also stops on its own once closing.
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def step(self) -> int:
        """Take, queue and refuse what start_urls holds now (one batch); how many entries."""
        may_begin = self._may_begin()
        if not (may_begin or self._may_claim()):
            return 0
        claim = await self.queue.claim(self.batch, self.claim_ms, may_begin=may_begin)
        self.counters.count("tass/feed/claims_returned", claim.returned)
        if not claim.members:
            return 0
        if not claim.running:
            await self._begin()
        pushes, rejections = self._sort(claim.members)
        try:
            queued, duplicates = await retry(
                lambda: self.queue.feed(
                    pushes, claim.members, rejections, epoch=self._epoch() or ""
                ),
                **self.health.retrying("queue fed URLs"),
            )
        except StateLost as exc:
            # The run lifecycle notices the loss and ends this worker's run; the entries go
            # back to start_urls at their claims' deadline, for the run that comes next.
            logger.warning("Fed URLs not queued (%d claims kept): %s", len(claim.members), exc)
            self.counters.count("tass/feed/state_lost")
            return 0
        self.counters.count("tass/feed/taken", len(claim.members))
        self.counters.count("tass/feed/queued", queued)
        self.counters.count("tass/feed/duplicates", duplicates)
        logger.info(
            "Fed URLs: took %d from start_urls, queued %d, %d already queued in this run, "
            "%d rejected",
            len(claim.members),
            queued,
            duplicates,
            len(rejections),
        )
        return len(claim.members)

    def _sort(self, members: list[bytes]) -> tuple[list[Push], list[str]]:
        pushes: list[Push] = []
        rejections: list[str] = []
        for member in members:
            raw = member.split(b":", 1)[1]
            try:
                pushes.append(self._push_for(raw))
            except FeedRejected as exc:
                logger.warning("Fed payload rejected (%s): %r", exc, raw[:200])
                self.counters.count("tass/feed/rejected")
                self.counters.count(f"tass/feed/rejected/{exc.reason}")
                rejections.append(rejection_record(raw, exc, self.worker_id, time.time()))
        return pushes, rejections

    def _push_for(self, raw: bytes) -> Push:
        entry = parse_payload(raw)
        try:
            return self._build(entry)
        except FeedRejected:
            raise
        except (TypeError, ValueError) as exc:  # meta the queue cannot hold, and the like
            raise FeedRejected("unqueueable", str(exc)) from exc

    async def _loop(self) -> None:
        while not self._closing:
            try:
                taken = await self.step()
            except Exception as exc:
                if not transient(exc):
                    raise
                self.health.down(exc)
                taken = 0
            if taken < self.batch:
                await asyncio.sleep(self.interval)
