"""The listing API's cursor semantics and the search API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.replica.conftest import Replica

API = "/userApi/categoryNewsList"


def page_through(
    replica: Replica, feed: int | str, limit: int, as_array: bool
) -> list[dict[str, Any]]:
    """What the site's own JavaScript does: timestamp=lastTime, exclude ids at that second."""
    got: list[dict[str, Any]] = []
    body: dict[str, Any] = {"sectionId": feed, "limit": limit, "type": "all", "imageSize": 434}
    exclude: list[int] = []
    for _ in range(1000):
        reply = replica.post(API, body)
        assert reply.status == 200
        data = reply.json()
        items = data["newsList"]
        if not items:
            return got
        got += items
        last = data["lastTime"]
        assert last == items[-1]["date"]
        if body.get("timestamp") != last:
            exclude = []
        exclude += [i["id"] for i in items if i["date"] == last]
        body["timestamp"] = last
        body["excludeNewsIds"] = exclude if as_array else ",".join(map(str, exclude))
    raise AssertionError("the listing never ended")


def expected_feed(truth: dict[str, Any], feed: int) -> list[int]:
    return [a["id"] for a in truth["articles"] if feed in a["feeds"]]


@pytest.mark.parametrize("as_array", [False, True])
@pytest.mark.parametrize("slug", ["politics", "world", "defense", "pressreview", "sports"])
def test_pages_through_a_whole_section(
    replica: Replica, truth: dict[str, Any], slug: str, as_array: bool
) -> None:
    feed = truth["sections"][slug]
    items = page_through(replica, feed, 7, as_array)
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)), "an item came twice"
    assert sorted(ids) == sorted(expected_feed(truth, feed))
    dates = [i["date"] for i in items]
    assert dates == sorted(dates, reverse=True)
    by_id = {a["id"]: a for a in truth["articles"]}
    for item in items:
        a = by_id[item["id"]]
        assert item["link"] == a["path"]
        assert item["title"] == a["title"]
        assert item["lead"] == (a["lead"] or "")
        assert set(item) >= {
            "id",
            "isFlash",
            "isOnline",
            "type",
            "mark",
            "date",
            "title",
            "subtitle",
            "lead",
            "image",
            "link",
            "sponsor_id",
            "sponsor_type_id",
        }
        assert item["image"] is None or item["image"].startswith("//cdn-media.tass.ru/width/434_")
    assert any(by_id[i]["section"] != slug for i in ids) or slug in ("pressreview", "sports")


def test_feed_has_same_second_items(replica: Replica, truth: dict[str, Any]) -> None:
    """Ties at one second exist, so the exclude list matters; small pages cross them."""
    dates = [a["published_at"] for a in truth["articles"] if a["feeds"]]
    assert len(dates) != len(set(dates))
    for feed in truth["sections"].values():
        items = page_through(replica, feed, 1, False)
        assert sorted(i["id"] for i in items) == sorted(expected_feed(truth, feed))


def test_theme_feed_and_string_ids(replica: Replica, truth: dict[str, Any]) -> None:
    for tid in truth["themes"].values():
        items = page_through(replica, str(tid), 20, False)
        assert sorted(i["id"] for i in items) == sorted(expected_feed(truth, tid))


def test_article_in_several_feeds_keeps_one_link(replica: Replica, truth: dict[str, Any]) -> None:
    multi = next(a for a in truth["articles"] if len(a["feeds"]) > 1)
    for feed in multi["feeds"]:
        items = page_through(replica, feed, 50, True)
        assert [i["link"] for i in items if i["id"] == multi["id"]] == [multi["path"]]


def test_old_pages_stay_reachable_and_big_limits(replica: Replica, truth: dict[str, Any]) -> None:
    feed = truth["sections"]["world"]
    everything = replica.post(API, {"sectionId": feed, "limit": 5000}).json()["newsList"]
    assert len(everything) == len(expected_feed(truth, feed))
    middle = everything[len(everything) // 2]
    page = replica.post(API, {"sectionId": feed, "limit": 5, "timestamp": middle["date"]}).json()
    assert page["newsList"][0]["date"] <= middle["date"]
    assert middle["id"] in [i["id"] for i in page["newsList"]] or any(
        i["date"] == middle["date"] for i in page["newsList"]
    )
    empty = replica.post(API, {"sectionId": feed, "timestamp": 1_000_000_000}).json()
    assert empty["newsList"] == []
    assert replica.post(API, {"sectionId": 1}).json()["newsList"] == []


@pytest.mark.parametrize("body", [{"limit": 5}, {"sectionId": "abc"}, [1, 2]])
def test_bad_requests(replica: Replica, body: Any) -> None:
    assert replica.post(API, body).status == 400
    assert replica.request("POST", API, body=b"{not json").status == 400
    assert replica.get(API).status == 405


def test_search(replica: Replica, truth: dict[str, Any]) -> None:
    newest = next(a for a in reversed(truth["articles"]) if a["feeds"])
    word = newest["title"].split()[-1]
    reply = replica.post(
        "/userApi/search",
        {
            "type": [],
            "sections": [],
            "searchStr": word,
            "sort": "date",
            "range": None,
            "from": 0,
            "size": 20,
        },
    )
    assert reply.status == 200
    results = reply.json()
    assert isinstance(results, list) and results
    assert all({"link", "title", "date"} <= set(r) for r in results)
    assert all(word.lower() in (r["title"] + " " + r["lead"]).lower() for r in results)
    assert [r["date"] for r in results] == sorted((r["date"] for r in results), reverse=True)
    world = truth["sections"]["world"]
    scoped = replica.post("/userApi/search", {"sections": [world], "searchStr": "", "size": 50})
    by_link = {a["path"]: a for a in truth["articles"]}
    assert all(world in by_link[r["link"]]["feeds"] for r in scoped.json())
    second = replica.post(
        "/userApi/search", {"sections": [world], "searchStr": "", "size": 25, "from": 25}
    ).json()
    assert second[0] == scoped.json()[25]
