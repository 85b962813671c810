"""The garbage collector's tuning: frozen once the spider opens, collected less often."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from scrapy import Spider, signals
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from crawler import defaults
from crawler import settings as project
from crawler.extensions import garbage

from .test_settings import failure, load


@pytest.fixture
def collector() -> Iterator[None]:
    """Python's collector as it was before the test, after it."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A cycle nothing else holds (reference counting alone never frees it)."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_tune_freezes_what_exists_and_raises_the_youngest_threshold(collector) -> None:
    gc.unfreeze()
    _, middle, oldest = gc.get_threshold()
    garbage.tune(50_000)
    assert gc.get_threshold() == (50_000, middle, oldest)
    assert gc.get_freeze_count() > 1000  # the loaded code, at least
    # A cycle made afterwards is still the collector's to free.
    later = _cycle()
    gc.collect()
    assert later() is None


def test_a_zero_threshold_leaves_the_collector_alone(collector) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    garbage.tune(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_crawl_tunes_it_when_the_spider_opens(collector) -> None:
    assert project.EXTENSIONS["crawler.extensions.garbage.GarbageCollection"] == 0
    gc.unfreeze()
    crawler = get_crawler(Spider, {"TASS_GC_THRESHOLD": "20000"})
    extension = garbage.GarbageCollection.from_crawler(crawler)
    assert extension.threshold == 20_000
    crawler.signals.send_catch_log(signal=signals.spider_opened, spider=Spider("tass"))
    assert gc.get_threshold()[0] == 20_000
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_a_malformed_threshold_is_refused_with_its_name(monkeypatch, value) -> None:
    message = failure(monkeypatch, TASS_GC_THRESHOLD=value)
    assert f"setting TASS_GC_THRESHOLD={value!r} is malformed" in message
    with pytest.raises(ValueError, match="TASS_GC_THRESHOLD must be a number of allocations"):
        garbage.threshold_of(Settings({"TASS_GC_THRESHOLD": value}))
    monkeypatch.delenv("TASS_GC_THRESHOLD")
    assert load(monkeypatch)["TASS_GC_THRESHOLD"] == defaults.TASS_GC_THRESHOLD
    assert load(monkeypatch, TASS_GC_THRESHOLD="0")["TASS_GC_THRESHOLD"] == 0
