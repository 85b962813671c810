"""Same arguments, same site, byte for byte; another seed, another site."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.replica.conftest import BROWSER_UA, Replica

ARGS = ("--articles", "300", "--seed", "21", "--base-url", "http://replica.test")
SWITCHED = ("--markup", "alt", "--sitemap-layout", "shuffle", "--sitemap-no-lastmod", "0.2")


@pytest.mark.parametrize("switches", [(), SWITCHED], ids=["default", "switched"])
def test_two_processes_serve_identical_bytes(
    start_replica_here: Callable[..., Replica], switches: tuple[str, ...]
) -> None:
    one, two = start_replica_here(*ARGS, *switches), start_replica_here(*ARGS, *switches)
    t1, t2 = one.get("/__replica__/truth").body, two.get("/__replica__/truth").body
    assert t1 == t2
    truth = one.truth()
    paths = [
        "/",
        "/politics",
        "/space-programs",
        "/sitemap.xml",
        "/sitemap/sitemap_news3.xml",
        "/robots.txt",
        "/today",
    ]
    index = one.get("/sitemap.xml").text
    paths += ["/sitemap/" + part.split("</loc>")[0] for part in index.split("/sitemap/")[1:]]
    for a in truth["articles"][::30]:
        paths += re.findall(r'href="(/tags?/[a-z0-9-]+)"', one.get(a["path"]).text)
    assert any(p.startswith("/tag") for p in paths)
    paths += [a["path"] for a in truth["articles"][::7]]
    paths += [h["path"] for h in truth["hostile"] if h["kind"] in ("cp1251", "invalid_bytes")]
    for path in paths:
        assert one.get(path).body == two.get(path).body, path
    assert one.get("/rss/v2.xml", ua=BROWSER_UA).body == two.get("/rss/v2.xml", ua=BROWSER_UA).body
    body = {"sectionId": 4954, "limit": 50}
    assert (
        one.post("/userApi/categoryNewsList", body).body
        == two.post("/userApi/categoryNewsList", body).body
    )


def test_another_seed_differs(start_replica: Callable[..., Replica]) -> None:
    one = start_replica(*ARGS)
    other = start_replica("--articles", "300", "--seed", "22", "--base-url", "http://replica.test")
    a, b = one.truth(), other.truth()
    assert [x["title"] for x in a["articles"]] != [x["title"] for x in b["articles"]]
    assert a["articles"][-1]["id"] == b["articles"][-1]["id"] == 2_198_933


def test_start_date(start_replica: Callable[..., Replica]) -> None:
    rep = start_replica("--articles", "50", "--start-date", "2025-03-01")
    newest = rep.truth()["articles"][-1]
    assert newest["published_at"].startswith("2025-03-01")
