"""Frontier memory in Redis: bytes per seen URL and per queued request, ours beside scrapy-redis.

For each size N (10^5 and 10^6 by default) and each implementation, a fresh Redis server gets N
synthetic article requests shaped like real ones (``https://tass.com/<section>/<odd id>``, the
ids a seeded sample of the odd numbers from 1,200,001 up to 2,200,000, or further when N needs
more odd ids than that range holds), through the real code paths:

- ours: ``TassSpider.article_request`` → ``TassScheduler.push_for`` → ``RedisFrontier.flush``
  (the FLUSH script: the article id's bit in the ``seen:articles`` bitmap; the request, a
  plain article request (``crawler.frontier.plain``), as its id's bit in
  ``pending:plain:ids:<priority>`` and its section's 4-bit code in ``pending:plain:sections``,
  beside the small ``pending:plain`` hash), in batches of 2,000 pushes per call, with the
  scheduler's own ``FrontierConfig.plain`` form;
- scrapy-redis 0.9.1 defaults: ``RFPDupeFilter.request_seen`` (SHA1 hex fingerprint in a set)
  and ``PriorityQueue.push`` (pickled ``Request.to_dict`` in a sorted set) of the baseline
  spider's request (``Request(url, callback=self.parse)``), their commands sent through a
  non-transactional pipeline of 5,000 (the same commands, fewer round trips).

The first 2,000 requests of each go through those real calls; the rest through a fast path
that builds the same bytes (the first 2,000 check that it does: same member, same fingerprint)
without the per-request Python cost (``Request.to_dict`` looks the callback up with
``inspect.getmembers``, ~0.1 ms a call), so 10^6 takes seconds; the Redis side (our FLUSH script,
scrapy-redis's SADD and ZADD) is always the real one.

Bytes are ``MEMORY USAGE <key> SAMPLES 0`` (every element counted) divided by N, summed over
the queue's keys (ours: ``pending`` and every ``pending:plain`` key); the growth of
``used_memory`` over the whole insert is given too. Ours also checks that the queue gives every
request back: it leases the first 2,000 (POP) and compares them with the members pushed. ::

    python -m bench.frontier_memory [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from bench.common import fresh_servers

SECTIONS = (
    "politics", "world", "economy", "defense", "science",
    "emergencies", "society", "pressreview", "sports",
)  # fmt: skip
FIRST_ID = 1_200_001
LAST_ID = 2_200_000
BATCH = 2000
PIPELINE = 5000


@dataclass(frozen=True, slots=True)
class MemoryResult:
    implementation: str
    n: int
    seen_bytes: int
    queue_bytes: int
    used_memory_delta: int
    member_bytes: float
    seconds: float

    @property
    def per_seen(self) -> float:
        return self.seen_bytes / self.n

    @property
    def per_queued(self) -> float:
        return self.queue_bytes / self.n


def synthetic_urls(n: int, seed: int = 7) -> list[str]:
    """N distinct article URLs with odd ids in the site's range (extended if N needs it)."""
    last = max(LAST_ID, FIRST_ID + 2 * n)
    rng = random.Random(seed)
    ids = rng.sample(range(FIRST_ID, last, 2), n)
    return [f"https://tass.com/{rng.choice(SECTIONS)}/{i}" for i in ids]


def _memory_usage(client: redis.Redis, key: str) -> int:
    """The key's bytes once stable: right after a burst of inserts a hash table may still be
    rehashing (two tables) until the server's cron finishes it."""
    last = -1
    for _ in range(20):
        size = int(client.memory_usage(key, samples=0) or 0)
        if size == last:
            break
        last = size
        time.sleep(0.5)
    return last


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _project_objects(redis_url: str) -> tuple[Any, Any]:
    """The tass spider and its scheduler, built from the project's settings (no crawl)."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    from scrapy.crawler import Crawler
    from scrapy.utils.project import get_project_settings

    from crawler.frontier.scheduler import TassScheduler
    from crawler.spiders.tass import TassSpider

    settings = get_project_settings()
    settings.set("REDIS_URL", redis_url)
    settings.set("MONGO_URI", "mongodb://127.0.0.1:1")  # not used
    crawler = Crawler(TassSpider, settings)
    spider = TassSpider.from_crawler(crawler, since="all")
    scheduler = TassScheduler.from_crawler(crawler)
    scheduler.spider = spider
    return spider, scheduler


SAMPLE = 2000  # requests built through the real code path before the fast path takes over


async def _fill_ours(redis_url: str, urls: list[str], prefix: str) -> float:
    from crawler.frontier.keys import FrontierKeys
    from crawler.frontier.queue import Push, RedisFrontier

    spider, scheduler = _project_objects(redis_url)
    client = AsyncRedis.from_url(redis_url)
    frontier = RedisFrontier(client, FrontierKeys(prefix), scheduler.config.plain)
    template: dict[str, Any] | None = None
    member_bytes = 0

    def fast(url: str) -> Push:
        # push_for's member with another URL and id: same keys, same JSON settings.
        assert template is not None
        article_id = int(url.rsplit("/", 1)[1])
        data = {**template, "url": url, "meta": {**template["meta"], "article_id": article_id}}
        member = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return Push(member.encode(), priority=data["priority"], article_id=article_id)

    try:
        for start in range(0, len(urls), BATCH):
            pushes = []
            for i, url in enumerate(urls[start : start + BATCH], start):
                if i < SAMPLE:
                    push = scheduler.push_for(spider.article_request(url, spider.run.params))
                    template = template or json.loads(push.member)
                    if fast(url) != push:
                        raise RuntimeError(f"fast path differs: {fast(url)} != {push}")
                else:
                    push = fast(url)
                member_bytes += len(push.member)
                pushes.append(push)
            result = await frontier.flush(pushes, [])
            if result.queued != len(pushes):
                raise RuntimeError(f"queued {result.queued} of {len(pushes)}")
        lowest = sorted(urls, key=lambda u: int(u.rsplit("/", 1)[1]))[:SAMPLE]
        await _check_leases(redis_url, [fast(u).member for u in lowest], prefix)
    finally:
        await client.aclose()
    return member_bytes / len(urls)


async def _check_leases(redis_url: str, members: list[bytes], prefix: str) -> None:
    """Lease as many requests as ``members`` (those of the lowest ids, in id order) from a
    copy of the queue and check they come back byte for byte, then drop the copy: the measured
    keys stay as the fill left them."""
    from crawler.frontier.keys import FrontierKeys
    from crawler.frontier.queue import Budget, RedisFrontier

    client = AsyncRedis.from_url(redis_url)
    copy = FrontierKeys(f"{prefix}-check")
    keys = await client.keys(f"{prefix}:pending*")
    try:
        for key in keys:
            await client.copy(key, key.decode().replace(prefix, copy.prefix, 1))
        budget = Budget(interval_ms=1, per_second=1000, concurrency=1000, lease_ms=600_000)
        got = (await RedisFrontier(client, copy).pop(len(members), budget)).leases
        if got != members:
            raise RuntimeError("the queue does not give back the requests pushed")
    finally:
        stale = await client.keys(f"{copy.prefix}:*")
        if stale:
            await client.delete(*stale)
        await client.aclose()


def measure_ours(n: int) -> MemoryResult:
    urls = synthetic_urls(n)
    prefix = "tass"
    with fresh_servers(mongo=False) as (red, _):
        client = redis.Redis.from_url(red.url)
        before = _used_memory(client)
        started = time.perf_counter()
        member = asyncio.run(_fill_ours(red.url, urls, prefix))
        seconds = time.perf_counter() - started
        after = _used_memory(client)
        result = MemoryResult(
            "ours",
            n,
            _memory_usage(client, f"{prefix}:seen:articles"),
            sum(_memory_usage(client, key) for key in client.keys(f"{prefix}:pending*")),
            after - before,
            member,
            seconds,
        )
        client.close()
    return result


def measure_scrapy_redis(n: int) -> MemoryResult:
    import scrapy
    from scrapy_redis import picklecompat
    from scrapy_redis.dupefilter import RFPDupeFilter
    from scrapy_redis.queue import PriorityQueue

    from bench.spiders import BaselineSpider

    spider = BaselineSpider(urls="")
    urls = synthetic_urls(n)
    dupe_key = f"{spider.name}:dupefilter"
    queue_key = f"{spider.name}:requests"
    template: dict[str, Any] = {}

    def fast(url: str) -> tuple[str, bytes]:
        # RFPDupeFilter.request_fingerprint of a canonical GET URL, and the pickled to_dict.
        key = json.dumps({"method": "GET", "url": url, "body": ""}, sort_keys=True)
        return hashlib.sha1(key.encode()).hexdigest(), picklecompat.dumps({**template, "url": url})

    with fresh_servers(mongo=False) as (red, _):
        client = redis.Redis.from_url(red.url)
        before = _used_memory(client)
        started = time.perf_counter()
        member_bytes = 0
        pipe = client.pipeline(transaction=False)
        dupefilter = RFPDupeFilter(server=pipe, key=dupe_key)
        queue = PriorityQueue(server=pipe, spider=spider, key=queue_key, serializer=picklecompat)
        for i, url in enumerate(urls, 1):
            if i <= SAMPLE:
                request = scrapy.Request(url, callback=spider.parse)
                template = template or request.to_dict(spider=spider)
                real = (dupefilter.request_fingerprint(request), queue._encode_request(request))
                if fast(url) != real:
                    raise RuntimeError(f"fast path differs for {url}")
                dupefilter.request_seen(request)  # SADD
                queue.push(request)  # ZADD
                data = real[1]
            else:
                fingerprint, data = fast(url)
                pipe.sadd(dupe_key, fingerprint)  # what request_seen sends
                pipe.zadd(queue_key, {data: 0})  # what push sends
            member_bytes += len(data)
            if i % PIPELINE == 0:
                pipe.execute()
        pipe.execute()
        seconds = time.perf_counter() - started
        after = _used_memory(client)
        if client.scard(dupe_key) != n or client.zcard(queue_key) != n:
            raise RuntimeError("scrapy-redis did not store every request")
        result = MemoryResult(
            "scrapy-redis",
            n,
            _memory_usage(client, dupe_key),
            _memory_usage(client, queue_key),
            after - before,
            member_bytes / n,
            seconds,
        )
        client.close()
    return result


def measure_lease_cost(n: int = 20_000, k: int = 16) -> dict[str, tuple[float, float]]:
    """Redis's own time (``INFO commandstats``: the FLUSH and POP scripts' calls) per request
    queued and per request leased, in microseconds, when N plain article requests wait as bits
    and when they wait as members (no plain form), queued 2,000 a call and leased k at a time:
    what one request costs the server on its way in and out."""
    from crawler.frontier.keys import FrontierKeys
    from crawler.frontier.plain import PlainForm
    from crawler.frontier.queue import Budget, Push, RedisFrontier

    form = PlainForm()
    urls = synthetic_urls(n)
    pushes = [Push(form.member(int(u.rsplit("/", 1)[1]), u.split("/")[3], 100), 100) for u in urls]
    budget = Budget(interval_ms=1, per_second=1000, concurrency=1000, lease_ms=600_000)
    costs: dict[str, tuple[float, float]] = {}

    async def script_us(client: AsyncRedis) -> float:
        return float((await client.info("commandstats"))["cmdstat_evalsha"]["usec"]) / n

    async def lease_all(url: str, plain: PlainForm | None) -> tuple[float, float]:
        client = AsyncRedis.from_url(url)
        frontier = RedisFrontier(client, FrontierKeys("lease"), plain)
        try:
            await frontier.flush([], [])  # loads the scripts: their compilation is not counted
            await client.config_resetstat()
            for start in range(0, n, BATCH):
                await frontier.flush(pushes[start : start + BATCH], [])
            queued = await script_us(client)
            await frontier.flush([], [], (await frontier.pop(1, budget)).leases)  # handed back
            await client.config_resetstat()
            leased = 0
            while got := (await frontier.pop(k, budget)).leases:
                leased += len(got)
            if leased != n:
                raise RuntimeError(f"leased {leased} of {n}")
            return queued, await script_us(client)
        finally:
            await client.aclose()

    for name, plain in (("bits", form), ("members", None)):
        with fresh_servers(mongo=False) as (red, _):
            costs[name] = asyncio.run(lease_all(red.url, plain))
    return costs


def measure(sizes: list[int]) -> list[MemoryResult]:
    results = []
    for n in sizes:
        for fn in (measure_scrapy_redis, measure_ours):
            result = fn(n)
            print(
                f"frontier memory: {result.implementation} n={n:,}: "
                f"{result.per_seen:.2f} B/seen URL, {result.per_queued:.1f} B/queued request "
                f"({result.seconds:.1f} s)",
                flush=True,
            )
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    measure(args.sizes)
    costs = measure_lease_cost()
    print(
        "frontier script cost (Redis µs per request, queued by FLUSH 2,000 a call / leased "
        "by POP 16 a call): "
        + ", ".join(f"{name} {q:.1f} / {p:.1f}" for name, (q, p) in costs.items()),
        flush=True,
    )


if __name__ == "__main__":
    main()
