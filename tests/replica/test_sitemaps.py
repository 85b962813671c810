"""Sitemap layouts (``--sitemap-layout``, ``--sitemap-no-lastmod``) over four simulated nights.

Whatever the layout, every linked article is listed exactly once a day, each ``lastmod`` is the
article's ``modified_at`` and moves exactly when it is edited, and ``--day N`` serves what
``advance`` reaches. Each layout cuts the files as the README says.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.replica.conftest import Replica

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
BASE = "http://replica.test"
MSK = timezone(timedelta(hours=3))
NIGHTS = 4
NO_LASTMOD = 0.2
CHUNK = 70
LAYOUTS = ["default", "rolling", "monthly", "daily", "shuffle"]

Day = dict[str, Any]
"""One day: ``truth``, ``files`` (name → [(url, lastmod or None)]), ``index`` (name → lastmod)."""


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def read_sitemaps(rep: Replica) -> tuple[dict[str, str], dict[str, list[tuple[str, str | None]]]]:
    index = ET.fromstring(rep.get("/sitemap.xml").body)
    marks: dict[str, str] = {}
    files: dict[str, list[tuple[str, str | None]]] = {}
    for entry in index.findall(f"{SM}sitemap"):
        loc = entry.findtext(f"{SM}loc") or ""
        assert loc.startswith(BASE + "/sitemap/"), loc
        name = loc.rsplit("/", 1)[1]
        marks[name] = entry.findtext(f"{SM}lastmod") or ""
        reply = rep.get(urlsplit(loc).path)
        assert reply.status == 200, loc
        assert reply.headers["content-type"].startswith("application/xml")
        files[name] = [
            (u.findtext(f"{SM}loc") or "", u.findtext(f"{SM}lastmod"))
            for u in ET.fromstring(reply.body).findall(f"{SM}url")
        ]
    assert len(files) == len(marks), "a file name appears twice in the index"
    return marks, files


def nights(rep: Replica) -> list[Day]:
    """Day 0 and ``NIGHTS`` - 1 advances: each day's truth and sitemaps."""
    days = []
    for night in range(NIGHTS):
        if night:
            reply = rep.request("POST", "/__replica__/advance?days=1")
            assert reply.status == 200 and reply.json()["day"] == night
        marks, files = read_sitemaps(rep)
        days.append({"truth": rep.truth(), "index": marks, "files": files})
    return days


@pytest.fixture(scope="module", params=LAYOUTS)
def layout(
    request: pytest.FixtureRequest, start_replica: Callable[..., Replica]
) -> tuple[str, list[Day]]:
    name = request.param
    rep = start_replica(
        *("--articles", "400", "--seed", "5", "--base-url", BASE),
        *("--sitemap-layout", name, "--sitemap-chunk", str(CHUNK)),
        *("--sitemap-no-lastmod", str(NO_LASTMOD)),
    )
    return name, nights(rep)


def test_every_article_once_a_day_with_its_lastmod(layout: tuple[str, list[Day]]) -> None:
    _name, days = layout
    without: set[str] | None = None
    for day in days:
        articles = {a["url"]: a for a in day["truth"]["articles"]}
        listed = [url for entries in day["files"].values() for url, _m in entries]
        assert sorted(listed) == sorted(url for url, a in articles.items() if a["reachable"])
        missing = set()
        for name, entries in day["files"].items():
            for url, lastmod in entries:
                if lastmod is None:
                    missing.add(url)
                    continue
                assert lastmod.endswith("+03:00")
                assert ts(lastmod) == ts(articles[url]["modified_at"])
            newest = max((ts(articles[u]["modified_at"]) for u, _m in entries), default=None)
            if newest is not None:
                assert ts(day["index"][name]) == newest
        assert 0.1 < len(missing) / len(listed) < 0.3
        # The same articles lack lastmod every day (picked by id), new ones at the same share.
        if without is not None:
            assert without <= missing
        without = missing


def test_lastmod_moves_exactly_on_edits(layout: tuple[str, list[Day]]) -> None:
    _name, days = layout
    for before, after in pairwise(days):
        old = {u: m for entries in before["files"].values() for u, m in entries}
        new = {u: m for entries in after["files"].values() for u, m in entries}
        revision = {a["url"]: a["revision"] for a in before["truth"]["articles"]}
        edited = {
            a["url"]
            for a in after["truth"]["articles"]
            if a["url"] in revision and a["revision"] != revision[a["url"]] and a["reachable"]
        }
        assert edited
        moved = {u for u, m in new.items() if u in old and m is not None and m != old[u]}
        shown = {u for u in edited if new[u] is not None}
        assert moved == shown
        assert all(old[u] is None for u in new if u in old and new[u] is None)


def test_the_layout(layout: tuple[str, list[Day]]) -> None:
    name, days = layout
    for day in days:
        articles = {a["url"]: a for a in day["truth"]["articles"]}

        def published(url: str, articles: dict[str, Any] = articles) -> datetime:
            return datetime.fromisoformat(articles[url]["published_at"]).astimezone(MSK)

        files = day["files"]
        names = list(files)
        flat = [url for entries in files.values() for url, _m in entries]
        order = sorted(flat, key=lambda u: (-ts(articles[u]["published_at"]), -articles[u]["id"]))
        if name == "default":
            assert names == [f"sitemap_news{n}.xml" for n in range(10)]
            per = -(-len(flat) // 10)
            sizes = [len(e) for e in files.values()]
            assert sizes == [min(per, max(0, len(flat) - n * per)) for n in range(10)]
            assert flat == order
        elif name == "rolling":
            assert names == [f"sitemap_news{n}.xml" for n in range(len(names))]
            assert flat == order
            assert [len(e) for e in files.values()][:-1] == [CHUNK] * (len(names) - 1)
            assert 1 <= len(files[names[-1]]) <= CHUNK
        elif name in ("monthly", "daily"):
            period = "%Y-%m" if name == "monthly" else "%Y-%m-%d"
            assert names == sorted(names, reverse=True)
            for file, entries in files.items():
                key = re.fullmatch(r"sitemap_news_([\d-]+)\.xml", file)
                assert key is not None
                assert {published(u).strftime(period) for u, _m in entries} == {key.group(1)}
                urls = [u for u, _m in entries]
                assert urls == [u for u in order if u in set(urls)]
            assert len(names) >= (3 if name == "daily" else 1)
        else:
            assert 8 <= len(names) <= 12
            assert all(re.fullmatch(r"sitemap_[0-9a-f]{10}_\d+\.xml", n) for n in names)
            assert flat != order
    if name == "shuffle":
        for before, after in pairwise(days):
            assert not set(before["files"]) & set(after["files"]), "file names change daily"
            where = {u: n for n, (_f, e) in enumerate(before["files"].items()) for u, _m in e}
            now = {u: n for n, (_f, e) in enumerate(after["files"].items()) for u, _m in e}
            moved = sum(1 for u in where if u in now and now[u] != where[u])
            assert moved > len(where) / 2, "entries move between files"
    if name in ("default", "rolling"):
        first = [[u for u, _m in d["files"]["sitemap_news0.xml"]] for d in days]
        assert all(a != b for a, b in pairwise(first)), "content shifts"
    if name in ("monthly", "daily"):
        # Only the newest files gain entries: an older file keeps its URLs from day to day.
        for before, after in pairwise(days):
            newest = max(before["files"])
            for file, entries in before["files"].items():
                if file != newest:
                    assert [u for u, _m in after["files"][file]] == [u for u, _m in entries]


@pytest.mark.parametrize("name", LAYOUTS)
def test_day_switch_equals_advances(start_replica_here: Callable[..., Replica], name: str) -> None:
    """``--day 3`` serves the sitemaps that three ``advance`` calls reach."""
    common = ("--articles", "300", "--seed", "9", "--base-url", BASE, "--sitemap-layout", name)
    common += ("--sitemap-no-lastmod", "0.1", "--sitemap-chunk", "90")
    direct = start_replica_here(*common, "--day", "3")
    stepped = start_replica_here(*common)
    assert stepped.request("POST", "/__replica__/advance?days=3").status == 200
    assert direct.get("/sitemap.xml").body == stepped.get("/sitemap.xml").body
    marks, _files = read_sitemaps(direct)
    for file in marks:
        path = f"/sitemap/{file}"
        assert direct.get(path).body == stepped.get(path).body


def test_unknown_sitemap_files(start_replica_here: Callable[..., Replica]) -> None:
    rep = start_replica_here("--articles", "100", "--sitemap-layout", "daily", "--base-url", BASE)
    names = list(read_sitemaps(rep)[0])
    assert rep.get("/sitemap/sitemap_news0.xml").status == 404
    assert rep.get("/sitemap/" + names[0]).status == 200
    assert rep.get("/sitemap/sitemap_news_1999-01-01.xml").status == 404
