"""Command-line errors, the --truth file, and the request statistics."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.replica.conftest import ROOT, UA, Replica, launch


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--articles", "0"], "--articles"),
        (["--port", "70000"], "--port"),
        (["--fault-503", "2"], "--fault-503"),
        (["--fault-429", "x"], "--fault-429"),
        (["--start-date", "2026-13-01"], "--start-date"),
        (["--day", "-1"], "--day"),
        (["--crawl-delay", "-3"], "--crawl-delay"),
        (["--markup", "fancy"], "--markup"),
        (["--sitemap-layout", "weekly"], "--sitemap-layout"),
        (["--sitemap-chunk", "0"], "--sitemap-chunk"),
        (["--sitemap-no-lastmod", "1.5"], "--sitemap-no-lastmod"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "replica", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert message in proc.stderr.decode()


def test_truth_file(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    rep = launch("--articles", "80", "--truth", str(path))
    try:
        written = json.loads(path.read_text())
        assert written == rep.truth()
        assert written["base_url"] == rep.base
    finally:
        rep.stop()


def test_port_in_use(replica: Replica) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "replica", "--port", str(replica.port), "--articles", "10"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and b"cannot bind" in proc.stderr


def test_stats(start_replica: Callable[..., Replica]) -> None:
    rep = start_replica("--articles", "60")
    truth = rep.truth()
    assert rep.request("POST", "/__replica__/stats/reset").status == 200
    article = truth["articles"][-1]
    rep.get("/")
    rep.get("/politics")
    rep.get("/space-programs")
    rep.get(article["path"])
    rep.get(article["path"])
    rep.get(article["path"] + "?utm_source=x")
    rep.get("/robots.txt")
    rep.get("/sitemap.xml")
    rep.get("/rss/v2.xml")
    rep.get("/nope")
    rep.get("/", ua="curl/8.0")
    rep.post("/userApi/categoryNewsList", {"sectionId": 4954})
    rep.post("/userApi/search", {"searchStr": "a"})
    rep.get("/tag/" + "x")
    stats = rep.get("/__replica__/stats").json()
    assert stats["total"] == 14
    kinds = stats["by_kind"]
    assert kinds["home"] == 1 and kinds["section"] == 1 and kinds["theme"] == 1
    assert kinds["article"] == 2 and kinds["redirect"] == 1 and kinds["robots"] == 1
    assert kinds["sitemap"] == 1 and kinds["rss"] == 1 and kinds["not_found"] == 2
    assert kinds["forbidden"] == 1 and kinds["api_list"] == 1 and kinds["api_search"] == 1
    assert stats["by_user_agent"] == {UA: 13, "curl/8.0": 1}
    assert 1 <= stats["max_rate_1s"] <= 14
    rep.request("POST", "/__replica__/stats/reset")
    assert rep.get("/__replica__/stats").json()["total"] == 0
