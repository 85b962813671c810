"""``POST /__replica__/switches``: the markup and the sitemap layout change while the replica
runs (a "site redesign" between two crawls), the truth follows, and a switched replica serves
what one started with the same switches serves."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from replica.config import ReplicaConfig
from replica.launch import USER_AGENT, ReplicaProcess
from replica.server import Site
from tests.replica.conftest import BROWSER_UA, Replica

BASE = "http://replica.test"
COMMON = ("--articles", "250", "--seed", "17", "--base-url", BASE)


def snapshot(rep: Replica, truth: dict[str, Any]) -> dict[str, bytes]:
    """Bytes of the truth, feeds, listing pages and a sample of article and tag pages."""
    paths = ["/", "/politics", "/space-programs", "/sitemap.xml", "/robots.txt"]
    paths += [a["path"] for a in truth["articles"][::5]]
    out = {path: rep.get(path).body for path in paths}
    out["truth"] = rep.get("/__replica__/truth").body
    out["rss"] = rep.get("/rss/v2.xml", ua=BROWSER_UA).body
    out["api"] = rep.post("/userApi/categoryNewsList", {"sectionId": 4954, "limit": 100}).body
    return out


def switch(rep: Replica, query: str) -> dict[str, Any]:
    reply = rep.request("POST", "/__replica__/switches?" + query)
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


@pytest.fixture
def live(start_replica_here: Callable[..., Replica]) -> Replica:
    """A fresh replica at day 0 in the default switches (each test moves its own)."""
    return start_replica_here(*COMMON)


@pytest.fixture(scope="module")
def steady(start_replica: Callable[..., Replica]) -> Replica:
    """A replica the test leaves as it found it."""
    return start_replica(*COMMON)


def test_redesign_and_back(live: Replica, start_replica_here: Callable[..., Replica]) -> None:
    truth = live.truth()
    before = snapshot(live, truth)
    assert live.get("/__replica__/switches").json() == {
        "markup": "default",
        "sitemap_layout": "default",
        "sitemap_chunk": 300,
        "sitemap_no_lastmod": 0.0,
    }
    assert switch(live, "markup=alt")["markup"] == "alt"
    redesigned = snapshot(live, truth)
    started_alt = start_replica_here(*COMMON, "--markup", "alt")
    assert redesigned == snapshot(started_alt, truth)
    changed = {k for k in before if before[k] != redesigned[k]}
    articles = {a["path"] for a in truth["articles"][::5]}
    assert articles <= changed and {"truth", "rss", "/politics"} <= changed
    assert "api" not in changed and "/sitemap.xml" not in changed
    assert live.get("/__replica__/info").json()["markup"] == "alt"
    switch(live, "markup=default")
    assert snapshot(live, truth) == before


def test_switches_compose_with_time_travel(
    live: Replica, start_replica_here: Callable[..., Replica]
) -> None:
    """Advance, then switch layout and markup: the same as starting at that day with them."""
    truth = live.truth()
    assert live.request("POST", "/__replica__/advance?days=2").status == 200
    got = switch(live, "markup=alt&sitemap-layout=shuffle&sitemap_no_lastmod=0.25")
    assert got == {
        "markup": "alt",
        "sitemap_layout": "shuffle",
        "sitemap_chunk": 300,
        "sitemap_no_lastmod": 0.25,
    }
    assert live.get("/__replica__/info").json()["day"] == 2
    args = ("--day", "2", "--markup", "alt", "--sitemap-layout", "shuffle")
    started = start_replica_here(*COMMON, *args, "--sitemap-no-lastmod", "0.25")
    day2 = live.truth()
    assert snapshot(live, day2) == snapshot(started, day2)
    assert day2["day"] == 2 and len(day2["articles"]) == len(truth["articles"]) + 400
    # The next night moves both the same way.
    for rep in (live, started):
        assert rep.request("POST", "/__replica__/advance?days=1").status == 200
    assert live.get("/sitemap.xml").body == started.get("/sitemap.xml").body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("markup=fancy", "markup must be one of default, alt"),
        ("sitemap_layout=weekly", "sitemap_layout must be one of"),
        ("sitemap-chunk=0", "sitemap_chunk must be at least 1"),
        ("sitemap_chunk=many", "sitemap_chunk: not a number"),
        ("sitemap_no_lastmod=1.5", "sitemap_no_lastmod must be a fraction"),
        ("seed=3", "not a switch: seed"),
        ("", "name at least one switch"),
    ],
)
def test_bad_switches(steady: Replica, query: str, message: str) -> None:
    before = steady.get("/__replica__/switches").json()
    reply = steady.request("POST", "/__replica__/switches?" + query)
    assert reply.status == 400
    assert message in reply.json()["error"]
    assert steady.get("/__replica__/switches").json() == before


def test_switches_are_not_counted(start_replica_here: Callable[..., Replica]) -> None:
    rep = start_replica_here("--articles", "40")
    rep.request("POST", "/__replica__/stats/reset")
    switch(rep, "markup=alt")
    rep.get("/__replica__/switches")
    assert rep.get("/__replica__/stats").json()["total"] == 0
    assert rep.request("PUT", "/__replica__/switches").status == 405


def test_config_names_the_bad_field() -> None:
    for field, value in [
        ("markup", "x"),
        ("sitemap_layout", "x"),
        ("sitemap_chunk", 0),
        ("sitemap_no_lastmod", -0.1),
    ]:
        with pytest.raises(ValueError, match=field):
            ReplicaConfig(**{field: value})  # type: ignore[arg-type]


def test_in_process_site_matches_the_cli(start_replica_here: Callable[..., Replica]) -> None:
    """``ReplicaConfig(markup=..., sitemap_layout=...)`` in process is what the CLI serves."""
    config = ReplicaConfig(
        articles=120,
        seed=4,
        base_url=BASE,
        start_date=date(2026, 10, 7),
        markup="alt",
        sitemap_layout="daily",
        sitemap_no_lastmod=0.3,
    )
    site = Site(config)
    rep = start_replica_here(
        *("--articles", "120", "--seed", "4", "--base-url", BASE, "--markup", "alt"),
        *("--sitemap-layout", "daily", "--sitemap-no-lastmod", "0.3"),
    )
    assert site.truth_bytes() == rep.get("/__replica__/truth").body
    newest = site.state.articles[-1]
    assert site.renderer.article_page(newest.index) == rep.get(newest.path).body
    assert site.renderer.sitemap_index() == rep.get("/sitemap.xml").body


def test_replica_process_helpers() -> None:
    """``ReplicaProcess.switch`` and ``advance``: what a crawler test calls between two runs."""
    with ReplicaProcess(articles=60, seed=3, extra_args=["--no-hostile"]) as process:
        newest = process.base_url + process.truth()["articles"][-1]["path"]

        def page() -> bytes:
            request = urllib.request.Request(newest, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=30) as response:
                body: bytes = response.read()
                return body

        before = page()
        assert process.switch(markup="alt", sitemap_layout="daily")["markup"] == "alt"
        assert page() != before
        assert process.advance(2) == {"day": 2, "articles": 460}
        assert process.get_json("/__replica__/info")["sitemap_layout"] == "daily"
        with pytest.raises(urllib.error.HTTPError) as info:
            process.switch(markup="fancy")
        assert info.value.code == 400
        info.value.close()
