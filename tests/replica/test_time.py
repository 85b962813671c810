"""Moving the site forward: --day N and POST /__replica__/advance agree, and add and edit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.replica.conftest import BROWSER_UA, Replica

BASE = "http://replica.test"


@pytest.fixture(scope="module")
def pair(start_replica: Callable[..., Replica]) -> tuple[Replica, Replica, dict[str, Any]]:
    """(replica started at day 1, replica started at day 0 then advanced, its day-0 truth)."""
    common = ("--articles", "400", "--seed", "11", "--base-url", BASE)
    at_day1 = start_replica(*common, "--day", "1")
    advanced = start_replica(*common)
    day0 = advanced.truth()
    reply = advanced.request("POST", "/__replica__/advance?days=1")
    assert reply.status == 200 and reply.json()["day"] == 1
    return at_day1, advanced, day0


def test_day1_equals_start_plus_advance(pair: tuple[Replica, Replica, dict[str, Any]]) -> None:
    at_day1, advanced, _day0 = pair
    t1, t2 = at_day1.truth(), advanced.truth()
    assert t1 == t2
    paths = [
        "/",
        "/politics",
        "/world",
        "/military-operation-in-ukraine",
        "/sitemap.xml",
        "/sitemap/sitemap_news0.xml",
        "/sitemap/sitemap_news9.xml",
        "/robots.txt",
    ]
    paths += [a["path"] for a in t1["articles"][:: max(1, len(t1["articles"]) // 60)]]
    paths += [a["path"] for a in t1["articles"] if a["revision"] > 1]
    for path in paths:
        r1, r2 = at_day1.get(path), advanced.get(path)
        assert r1.status == r2.status == 200, path
        assert r1.body == r2.body, path
    assert (
        at_day1.get("/rss/v2.xml", ua=BROWSER_UA).body
        == advanced.get("/rss/v2.xml", ua=BROWSER_UA).body
    )
    body = {"sectionId": 4844, "limit": 30}
    assert (
        at_day1.post("/userApi/categoryNewsList", body).body
        == advanced.post("/userApi/categoryNewsList", body).body
    )


def test_advance_adds_and_edits(pair: tuple[Replica, Replica, dict[str, Any]]) -> None:
    _at_day1, advanced, day0 = pair
    day1 = advanced.truth()
    assert day1["day"] == 1 and day0["day"] == 0
    old = {a["id"]: a for a in day0["articles"]}
    new = [a for a in day1["articles"] if a["id"] not in old]
    assert len(new) == 200
    assert min(a["id"] for a in new) > max(old)
    assert {a["section"] for a in new} >= {"politics", "world", "economy"}
    assert all(
        a["published_at"] > max(o["published_at"] for o in old.values())
        or a["section"] == "pressreview"
        for a in new
    )
    edited = [
        a for a in day1["articles"] if a["id"] in old and a["revision"] > old[a["id"]]["revision"]
    ]
    recent = [a for a in day1["articles"] if a["published_at"] >= day1["now"][:10]]
    assert 5 <= len(edited) <= 60, len(edited)
    assert recent
    sitemap_lastmod = {}
    for n in range(10):
        text = advanced.get(f"/sitemap/sitemap_news{n}.xml").text
        for chunk in text.split("<url>")[1:]:
            loc = chunk.split("<loc>")[1].split("</loc>")[0]
            sitemap_lastmod[loc] = chunk.split("<lastmod>")[1].split("</lastmod>")[0]
    for a in edited:
        before = old[a["id"]]
        assert a["modified_at"] > before["modified_at"]
        assert a["body"] != before["body"] or a["title"] != before["title"]
        assert a["revision"] == before["revision"] + 1
        if a["reachable"]:
            lastmod = datetime.fromisoformat(sitemap_lastmod[a["url"]])
            assert lastmod == datetime.fromisoformat(a["modified_at"])
        page = advanced.get(a["path"]).text
        assert "Updated" in page
        ld = page.rsplit('<script type="application/ld+json">', 1)[1].split("</script>")[0]
        assert json.loads(ld)["dateModified"][:16] != json.loads(ld)["datePublished"][:16]
    unchanged = [
        a for a in day1["articles"] if a["id"] in old and a["id"] not in {e["id"] for e in edited}
    ]
    assert all(a == old[a["id"]] for a in unchanged)


def test_listings_follow_the_day(pair: tuple[Replica, Replica, dict[str, Any]]) -> None:
    _at_day1, advanced, _day0 = pair
    t = advanced.truth()
    newest = max((a for a in t["articles"] if a["feeds"]), key=lambda a: a["published_at"])
    rss = advanced.get("/rss/v2.xml", ua=BROWSER_UA).text
    assert newest["url"] in rss
    assert newest["path"] in advanced.get("/").text
    first = advanced.post(
        "/userApi/categoryNewsList", {"sectionId": newest["feeds"][0], "limit": 1}
    ).json()
    assert first["newsList"][0]["id"] == newest["id"]


def test_bad_advance(pair: tuple[Replica, Replica, dict[str, Any]]) -> None:
    _at_day1, advanced, _day0 = pair
    assert advanced.request("POST", "/__replica__/advance?days=0").status == 400
    assert advanced.request("POST", "/__replica__/advance?days=x").status == 400
