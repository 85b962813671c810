"""The listing API and RSS items say what spec §4 and §6 say, agree with the truth, and do so
under both markups (they are the crawler's signals that do not depend on page markup)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.replica.conftest import ARTICLES, BROWSER_UA, Replica

API = "/userApi/categoryNewsList"
SECTION_NAMES = {
    "politics": "Russian Politics & Diplomacy",
    "world": "World",
    "economy": "Business & Economy",
    "defense": "Military & Defense",
    "science": "Science & Space",
    "emergencies": "Emergencies",
    "society": "Society & Culture",
    "pressreview": "Press Review",
    "sports": "Sports",
}
API_FIELDS = {
    "id", "isFlash", "isOnline", "type", "mark", "date", "title", "subtitle", "lead", "image",
    "link", "sponsor_id", "sponsor_type_id",
}  # fmt: skip


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@pytest.fixture(scope="module", params=["default", "alt"])
def site(
    request: pytest.FixtureRequest, start_replica: Callable[..., Replica]
) -> tuple[str, Replica, dict[str, Any]]:
    markup = request.param
    rep = start_replica("--articles", str(ARTICLES), "--seed", "7", "--markup", markup)
    return markup, rep, rep.truth()


def test_listing_items(site: tuple[str, Replica, dict[str, Any]]) -> None:
    _markup, rep, truth = site
    by_id = {a["id"]: a for a in truth["articles"]}
    feeds = {**truth["sections"], **truth["themes"]}
    seen: dict[int, dict[str, Any]] = {}
    for feed in feeds.values():
        reply = rep.post(API, {"sectionId": feed, "limit": 5000, "type": "all"})
        assert reply.status == 200
        items = reply.json()["newsList"]
        assert [i["id"] for i in items] == [
            a["id"]
            for a in sorted(
                (a for a in truth["articles"] if feed in a["feeds"]),
                key=lambda a: (-ts(a["published_at"]), -a["id"]),
            )
        ]
        for item in items:
            assert set(item) == API_FIELDS
            a = by_id[item["id"]]
            assert item["title"] == a["title"]
            assert item["lead"] == (a["lead"] or "")
            assert item["mark"] == (a["mark"] or "")
            assert item["date"] == ts(a["published_at"])
            assert item["link"] == a["path"]
            assert item["type"] == "default" and item["subtitle"] == ""
            if item["image"] is not None:
                lead_photo = a["images"][0]["url"]
                assert item["image"] == "//" + lead_photo.split("://", 1)[1].replace(
                    "/1020_", "/434_"
                )
            assert seen.setdefault(item["id"], item) == item, "one item, whatever the feed"
    listed = {a["id"] for a in truth["articles"] if a["feeds"]}
    assert set(seen) == listed
    with_image = sum(1 for item in seen.values() if item["image"] is not None)
    assert 0 < with_image < len(seen) / 2, "image is null for most items"
    assert any(item["mark"] for item in seen.values())


def test_rss_items(site: tuple[str, Replica, dict[str, Any]]) -> None:
    markup, rep, truth = site
    reply = rep.get("/rss/v2.xml", ua=BROWSER_UA)
    assert reply.status == 200
    items = ET.fromstring(reply.body).findall("./channel/item")
    newest = sorted(
        (a for a in truth["articles"] if a["feeds"]),
        key=lambda a: (-ts(a["published_at"]), -a["id"]),
    )[:100]
    assert [i.findtext("link") for i in items] == [a["url"] for a in newest]
    for item, a in zip(items, newest, strict=True):
        assert item.findtext("title") == a["title"]
        assert (item.findtext("description") or "") == (a["lead"] or "")
        pub = item.findtext("pubDate") or ""
        assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0300", pub)
        when = datetime.strptime(pub, "%a, %d %b %Y %H:%M:%S %z")
        assert int(when.timestamp()) == ts(a["published_at"])
        categories = [c.text for c in item.findall("category")]
        guid = item.find("guid")
        if markup == "default":
            assert categories == [SECTION_NAMES[a["home_section"]]] and guid is None
        else:
            assert categories == [a["mark"] or SECTION_NAMES[a["home_section"]]]
            assert guid is not None and guid.text == str(a["id"])
            assert guid.get("isPermaLink") == "false"
    assert any(not a["lead"] for a in truth["articles"] if a["feeds"])
    if markup == "alt":
        assert b"<![CDATA[" in reply.body
