"""The items feed against real servers: the store's new versions land in a Redis stream
before the store answers; unchanged re-fetches and failures do not."""

from __future__ import annotations

import json

import pytest
import redis
from scrapy.exceptions import NotConfigured

from crawler.frontier.keys import FrontierKeys
from pipelines.feed import ItemsFeed
from pipelines.signals import StoredArticle

from .helpers import Chain, article, failure, make_crawler, run


def test_new_and_revised_articles_are_pushed_as_stored(
    mongo_uri, mongo_db_name, redis_url, key_prefix
) -> None:
    crawler = make_crawler(
        mongo_uri,
        mongo_db_name,
        REDIS_URL=redis_url,
        TASS_REDIS_PREFIX=key_prefix,
        TASS_FEED_ENABLED=True,
        TASS_FEED_MAXLEN=1000,
    )
    feed = ItemsFeed.from_crawler(crawler)
    chain = Chain(crawler)
    first = article(4201)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = FrontierKeys(key_prefix).items_feed

    async def body():
        await chain.open()
        await chain.process(first)
        assert client.xlen(key) == 1  # in the stream before the store answered
        await chain.process(article(4201))  # unchanged: nothing to tell
        await chain.process(article(4201, body=first.body + "\n\nMore."))
        await chain.process(failure("https://tass.com/politics/4203"))
        await chain.close()
        await feed.spider_closed()

    run(body)
    entries = [fields for _, fields in client.xrange(key)]
    client.close()
    assert [(e["event"], e["id"], e["revision"]) for e in entries] == [
        ("new", "4201", "1"),
        ("revised", "4201", "2"),
    ]
    doc = json.loads(entries[1]["article"])
    assert doc["id"] == 4201 and doc["revision"] == 2 and doc["body"].endswith("More.")
    assert doc["published_at"].endswith("Z") and doc["first_seen_at"].endswith("Z")
    assert crawler.stats.get_value("tass/feed/pushed") == 2


def test_the_feed_is_off_unless_enabled_and_checks_its_cap() -> None:
    with pytest.raises(NotConfigured, match="TASS_FEED_ENABLED"):
        ItemsFeed.from_crawler(make_crawler())
    with pytest.raises(ValueError, match="TASS_FEED_MAXLEN"):
        ItemsFeed.from_crawler(
            make_crawler(
                REDIS_URL="redis://127.0.0.1:1", TASS_FEED_ENABLED=True, TASS_FEED_MAXLEN=0
            )
        )


def test_the_stream_is_capped(redis_url, key_prefix) -> None:
    crawler = make_crawler(
        REDIS_URL=redis_url,
        TASS_REDIS_PREFIX=key_prefix,
        TASS_FEED_ENABLED=True,
        TASS_FEED_MAXLEN=10,
    )
    feed = ItemsFeed.from_crawler(crawler)
    docs = [{"_id": i, "revision": 1, "title": f"t{i}"} for i in range(1, 601)]

    async def body():
        for start in range(0, len(docs), 100):
            await feed.article_stored([StoredArticle("new", d) for d in docs[start : start + 100]])
        await feed.spider_closed()

    run(body)
    client = redis.Redis.from_url(redis_url)
    length = client.xlen(FrontierKeys(key_prefix).items_feed)
    client.close()
    assert 10 <= length < 600  # trimmed near the cap (approximately, as Redis trims whole nodes)
