"""The pipelines inside a real Scrapy crawl on the asyncio reactor, in a child process.

The spider yields its items straight from ``start()`` (no HTTP): what is under test is the
pipelines' life cycle in Scrapy's engine: async ``open_spider``/``process_item``/
``close_spider``, the flush timer on the reactor's event loop, and the final flush at close.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPT = r"""
import json, random, sys
from datetime import UTC, datetime, timedelta

import scrapy
from scrapy.crawler import CrawlerProcess

from crawler import settings as project
from crawler.items import ArticleItem, PageFailure

WORDS = "summit minister grain export talks moscow treaty ruble budget drone orbit port".split()


def body(seed):
    rng = random.Random(seed)
    return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(4))


class ItemsSpider(scrapy.Spider):
    name = "items"

    async def start(self):
        base = datetime(2026, 10, 7, 12, 0)  # naive: Moscow time
        for n in range(int(sys.argv[3])):
            aid = 2150001 + 2 * n
            yield ArticleItem(
                id=aid, url=f"https://tass.com/world/{aid}", section="world", kind="news",
                title=f"Story {n} - TASS", lead="", body=body(n) + f" Unique {n} marker.",
                dateline="MOSCOW", published_at=base + timedelta(minutes=n), modified_at=None,
            )
        yield PageFailure(url="https://tass.com/world/1", reason="http_status", status=500)


stats = {}
process = CrawlerProcess(settings={
    "ITEM_PIPELINES": project.ITEM_PIPELINES,
    "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    "MONGO_URI": sys.argv[1],
    "MONGO_DATABASE": sys.argv[2],
    "TASS_STORE_BATCH_SIZE": 7,
    "TASS_STORE_FLUSH_INTERVAL": 0.2,
    "LOG_LEVEL": "INFO",
    "TELNETCONSOLE_ENABLED": False,
})
crawler = process.create_crawler(ItemsSpider)
process.crawl(crawler)
process.start()
wanted = ("tass/", "item_", "log_count/")
values = crawler.stats.get_stats().items()
print("STATS " + json.dumps({k: v for k, v in values if k.startswith(wanted)}))
"""


def test_pipelines_in_a_real_crawl(mongo_uri, mongo_db_name, mongo_db, tmp_path: Path) -> None:
    script = tmp_path / "crawl_items.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), mongo_uri, mongo_db_name, "25"],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("STATS "))
    stats = json.loads(line.removeprefix("STATS "))
    assert stats["tass/store/inserted"] == 25
    assert stats["tass/store/failures"] == 1
    assert stats["item_scraped_count"] == 26
    assert "tass/dedupe/near_duplicates" not in stats
    assert stats.get("log_count/ERROR", 0) == 0, proc.stderr[-3000:]
    assert mongo_db.articles.count_documents({}) == 25
    doc = mongo_db.articles.find_one({"_id": 2150001})
    assert doc["title"] == "Story 0" and doc["lead"] is None and doc["revision"] == 1
    assert doc["published_at"].isoformat() == "2026-10-07T09:00:00"  # UTC
    assert mongo_db.failures.find_one({"url": "https://tass.com/world/1"})["status"] == 500
