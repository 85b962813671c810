"""The hostile pages behave as the truth's ``hostile`` list says."""

from __future__ import annotations

import http.client
import struct
import zlib
from collections.abc import Callable
from typing import Any

import lxml.html
import pytest

from tests.replica.conftest import UA, Replica
from tests.replica.test_pages import extract


def entry(truth: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(h for h in truth["hostile"] if h["kind"] == kind)


def article_for(truth: dict[str, Any], path: str) -> dict[str, Any]:
    return next(a for a in truth["articles"] if a["path"] == path)


def test_listed_with_expectations(truth: dict[str, Any]) -> None:
    kinds = {h["kind"]: h["expect"] for h in truth["hostile"]}
    assert kinds == {
        "huge_page": "failure",
        "gzip_bomb": "failure",
        "redirect_loop": "failure",
        "calendar": "skip",
        "cp1251": "article",
        "truncated": "failure",
        "invalid_bytes": "article",
        "empty_body": "failure",
    }
    paths = {a["path"] for a in truth["articles"]}
    for h in truth["hostile"]:
        assert h["url"] == truth["base_url"] + h["path"] and h["why"]
        assert (h["path"] in paths) == (h["expect"] == "article")


def test_huge_page(replica: Replica, truth: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection(replica.host, replica.port, timeout=30)
    conn.request("GET", entry(truth, "huge_page")["path"], headers={"User-Agent": UA})
    resp = conn.getresponse()
    assert resp.status == 200
    assert int(resp.getheader("Content-Length")) >= 50 * 1024 * 1024
    head = resp.read(65536)
    assert b'<h1 class="news-header__title">' in head
    conn.close()


def test_gzip_bomb(replica: Replica, truth: dict[str, Any]) -> None:
    reply = replica.get(entry(truth, "gzip_bomb")["path"])
    assert reply.status == 200
    assert reply.headers["content-encoding"] == "gzip"
    assert len(reply.body) < 2 * 1024 * 1024
    inflated_size = struct.unpack("<I", reply.body[-4:])[0]
    assert inflated_size > 1_000_000_000
    start = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(reply.body[:100_000], 4_000_000)
    assert start.startswith(b"<!DOCTYPE html>") and len(start) == 4_000_000


def test_redirect_loop(replica: Replica, truth: dict[str, Any]) -> None:
    path = entry(truth, "redirect_loop")["path"]
    seen = [path]
    for _ in range(4):
        r = replica.get(seen[-1])
        assert r.status == 301
        seen.append(r.headers["location"])
    assert seen[0] == seen[2] == seen[4] and seen[1] == seen[3] != seen[0]


def test_endless_calendar(replica: Replica, truth: dict[str, Any]) -> None:
    path = entry(truth, "calendar")["path"]
    assert path in replica.get("/").text
    for direction in ("a.pagination__next", "a.pagination__prev"):
        url = path
        visited = set()
        for _ in range(5):
            r = replica.get(url)
            assert r.status == 200
            visited.add(url)
            url = lxml.html.fromstring(r.body).cssselect(direction)[0].get("href")
        assert len(visited) == 5 and url not in visited
    assert replica.get("/archive/2999/12/31").status == 200
    assert replica.get("/archive/2026/02/30").status == 404
    today = lxml.html.fromstring(replica.get(path).body)
    assert today.cssselect("a.news-preview")


def test_cp1251_article(replica: Replica, truth: dict[str, Any]) -> None:
    path = entry(truth, "cp1251")["path"]
    reply = replica.get(path)
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=windows-1251"
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode("utf-8")
    page = reply.body.decode("cp1251")
    assert '<meta charset="windows-1251">' in page
    a = article_for(truth, path)
    got = extract(page)
    assert got["title"] == a["title"] and got["body"] == a["body"] and got["lead"] == a["lead"]
    assert any("«" in p and any("а" <= ch <= "я" for ch in p) for p in a["body"])


def test_truncated(replica: Replica, truth: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection(replica.host, replica.port, timeout=30)
    conn.request("GET", entry(truth, "truncated")["path"], headers={"User-Agent": UA})
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert b'<div class="text-content">' in info.value.partial
    assert b"</html>" not in info.value.partial
    conn.close()


def test_invalid_bytes(replica: Replica, truth: dict[str, Any]) -> None:
    path = entry(truth, "invalid_bytes")["path"]
    reply = replica.get(path)
    assert reply.status == 200
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode("utf-8")
    page = reply.body.decode("utf-8", errors="replace")
    got = extract(page)
    a = article_for(truth, path)
    cleaned = [" ".join(p.replace("\ufffd", "").split()) for p in got["body"]]
    assert cleaned == a["body"]
    assert cleaned != got["body"]
    assert got["title"] == a["title"]


def test_empty_body(replica: Replica, truth: dict[str, Any]) -> None:
    reply = replica.get(entry(truth, "empty_body")["path"])
    assert reply.status == 200 and reply.body == b""


def test_no_hostile(start_replica: Callable[..., Replica], truth: dict[str, Any]) -> None:
    rep = start_replica("--articles", "400", "--seed", "7", "--no-hostile")
    t = rep.truth()
    assert t["hostile"] == []
    home = rep.get("/").text
    for h in truth["hostile"]:
        if h["expect"] == "article":
            reply = rep.get(h["path"])
            assert reply.status == 200
            reply.body.decode("utf-8")
            assert reply.headers["content-type"] == "text/html; charset=utf-8"
        else:
            assert rep.get(h["path"]).status == 404, h["path"]
            assert f'href="{h["path"]}"' not in home
