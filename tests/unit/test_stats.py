"""The crawl's stats collector counts as Scrapy's in-memory one does, without its shim."""

from __future__ import annotations

import warnings

from scrapy import Spider
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler import settings as project
from crawler.extensions.stats import StatsCollector


def _exercise(stats: MemoryStatsCollector) -> dict[str, object]:
    stats.open_spider()
    stats.inc_value("a")
    stats.inc_value("a", 2)
    stats.inc_value("b", start=10)
    stats.set_value("c", "x")
    stats.max_value("m", 3)
    stats.max_value("m", 1)
    stats.min_value("n", 3)
    stats.min_value("n", 1)
    return {**stats.get_stats(), "a?": stats.get_value("a"), "z?": stats.get_value("z", 0)}


def test_it_counts_what_scrapys_collector_counts_and_keeps_them_at_close() -> None:
    crawler = get_crawler(Spider, {"STATS_CLASS": project.STATS_CLASS})
    crawler.spider = Spider("tass")
    ours = crawler.stats
    assert isinstance(ours, StatsCollector), "the crawl's settings name it"
    theirs = MemoryStatsCollector(crawler)
    assert _exercise(ours) == _exercise(theirs) == {
        "a": 3, "b": 11, "c": "x", "m": 3, "n": 1, "a?": 3, "z?": 0,
    }  # fmt: skip
    ours.close_spider(reason="finished")
    assert ours.spider_stats["tass"]["a"] == 3


def test_reads_skip_the_deprecation_shim() -> None:
    """The shim's one effect is the warning for a ``spider`` argument: Scrapy's collector
    gives it, this one runs without the shim, so it does not."""
    crawler = get_crawler(Spider)
    spider = Spider("tass")
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        MemoryStatsCollector(crawler).inc_value("a", spider=spider)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        StatsCollector(crawler).inc_value("a", spider=spider)
    assert [w.category.__name__ for w in theirs] == ["ScrapyDeprecationWarning"]
    assert ours == []
