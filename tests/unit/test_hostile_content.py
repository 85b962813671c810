"""Hostile content, crawled in-process through a rewriting proxy (issue 11, items 1, 2, 4, 9).

The replica serves its ordinary site; a rewriting proxy (``tests.proxy``) in front of it turns
chosen articles hostile, and another host (another port of 127.0.0.1) serves what they point
to. Each case is judged by its outcome for the article: what is stored, what is in
``failures``, what the dead letters replay, what the run report and the logs say, and whether
anything was fetched from the other host.

- offsite: a 301 and a meta refresh, each to the other host, once to a page that claims in its
  ``og:url`` (and canonical link and JSON-LD) to be another article of the site, once to a plain
  page; and a 301 to another article of the site.
- deep: an article whose body is nested 1,000 elements deep.
- controls: an article whose title, lead and body hold NUL and other control characters, and
  whose JSON-LD headline holds ``\\u0000`` and a lone surrogate.
- flood: an article page holding 50,000 links to the site (article URLs that do not exist).
- unexpected: an exception nobody expected while handling one article.
- run cap: three pages of 2,000 links each, with small link caps.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from scrapy.http import Response

from crawler import defaults
from crawler.frontier.keys import FrontierKeys
from crawler.spiders.tass import TassSpider
from replica.server import ReplicaServer
from tests.proxy import OtherHost, RewritingProxy, redirect, rewrite
from tests.unit.test_frontier_adapters import Crawl, Front, cleanup, database, run_crawl

FLOOD_LINKS = 50_000
FAKE_ID = 1_000_001
"""Odd ids far below the replica's: article URLs that answer 404."""
DEPTH = 1_000
OTHER_HEADLINE = "Headline of a page on another host"
PLAIN_PAGE = b"<html><head><title>Elsewhere</title></head><body><p>Not TASS.</p></body></html>"


@dataclass
class Scene:
    """What a test's front set up: the proxy, the other host, the truth, who plays what."""

    proxy: RewritingProxy | None = None
    other: OtherHost | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)


class Records(logging.Handler):
    """Keeps the messages of the crawler's loggers during a crawl."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def ordinary(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Articles fit for any role: reachable, not a gallery or a republication, an ASCII start
    (so a control character two characters in sits inside a word), with a lead."""
    return [
        a
        for a in truth["articles"]
        if a["reachable"]
        and a["kind"] in ("news", "article")
        and a["duplicate_of"] is None
        and a["lead"]
        and re.match(r"[A-Za-z]{3}", a["title"])
        and re.match(r"[A-Za-z]{3}", a["lead"])
    ]


def front(scene: Scene, cast: Callable[[Scene, str], None]) -> Front:
    """A proxy in front of the replica and another host beside it; ``cast`` gives the roles."""

    @asynccontextmanager
    async def make(server: ReplicaServer) -> AsyncIterator[str]:
        scene.other, scene.proxy = OtherHost(), RewritingProxy(server.listen_url)
        await scene.other.start()
        base = await scene.proxy.start()
        server.site.bind(base)  # the replica links to the proxy's address, as to itself
        scene.truth = server.site.truth()
        cast(scene, base)
        try:
            yield base
        finally:
            await scene.proxy.stop()
            await scene.other.stop()

    return make


async def page_of(scene: Scene, article: dict[str, Any]) -> bytes:
    """The replica's page of ``article`` (as the proxy would forward it)."""
    assert scene.proxy is not None
    return await scene.proxy.get(article["path"])


# --- page rewrites -------------------------------------------------------------------------


def with_meta_refresh(target: str) -> Callable[[bytes], bytes]:
    def change(page: bytes) -> bytes:
        tag = f'<meta http-equiv="refresh" content="0; url={target}">'.encode()
        return page.replace(b"<head>", b"<head>" + tag, 1)

    return change


def with_headline(page: bytes, title: str, headline: str) -> bytes:
    """``page`` with its headline (h1, title, og:title, JSON-LD) replaced."""
    escaped = title.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#x27;")
    for old in {title, escaped, json.dumps(title)[1:-1]}:
        page = page.replace(old.encode(), headline.encode())
    return page


def nested(page: bytes) -> bytes:
    """``page`` with the content of its ``div.text-content`` inside ``DEPTH`` nested divs."""
    start = page.index(b">", page.index(b'<div class="text-content"')) + 1
    depth, end = 1, start
    for tag in re.finditer(rb"<div\b|</div>", page[start:]):
        depth += 1 if tag.group() == b"<div" else -1
        if depth == 0:
            end = start + tag.start()
            break
    assert end > start, "no end of div.text-content"
    return page[:start] + b"<div>" * DEPTH + page[start:end] + b"</div>" * DEPTH + page[end:]


CONTROLS = "\x00\x01\x08\x1b\x7f\x80\x9f"
"""Control characters that are not whitespace (raw in the HTML, UTF-8 encoded)."""


def with_controls(page: bytes) -> bytes:
    """Control characters two characters into the h1, the lead, og:title and the first
    paragraph, character references of controls beside them, and ``\\u0000`` and a lone
    surrogate escape in the JSON-LD headline."""
    raw = CONTROLS.encode() + b"&#1;&#x7f;&#0;"

    def two_in(data: bytes, marker: bytes, what: bytes, after: bytes = b"") -> bytes:
        found = re.compile(marker).search(data, data.index(after) if after else 0)
        assert found is not None, marker
        at = found.end() + 2
        return data[:at] + what + data[at:]

    page = two_in(page, rb"<h1[^>]*>", raw)
    page = two_in(page, rb'<div class="(?:news-header__lead|article-lead)">', raw)
    page = two_in(page, rb"<p>", raw, after=b'<div class="text-content"')
    page = two_in(page, rb'property="og:title" content="', b"&#1;&#x9f;")
    return two_in(page, rb'"headline":"', rb"\u0000\ud800\u001b")


def with_links(count: int, first_id: int) -> Callable[[bytes], bytes]:
    """``page`` with ``count`` links to article URLs of the site that do not exist, inside the
    article (before its text)."""

    def change(page: bytes) -> bytes:
        links = b"".join(
            b'<a href="/world/%d">More</a> ' % (first_id + 2 * i) for i in range(count)
        )
        at = page.index(b'<div class="text-content"')
        return page[:at] + b'<div class="more-news">' + links + b"</div>" + page[at:]

    return change


# --- the crawl of every content case ---------------------------------------------------------


def cast_content(scene: Scene, base: str) -> None:
    assert scene.proxy is not None and scene.other is not None
    picks = ordinary(scene.truth)
    names = ("a", "b", "c", "d", "e", "f", "g", "h", "deep", "controls", "flood")
    assert len(picks) >= len(names), f"only {len(picks)} ordinary articles"
    roles = scene.roles = dict(zip(names, picks, strict=False))
    rules, other = scene.proxy.rules, scene.other.url
    rules[roles["a"]["path"]] = redirect(f"{other}/story-b")
    rules[roles["c"]["path"]] = redirect(f"{other}/plain")
    rules[roles["d"]["path"]] = rewrite(with_meta_refresh(f"{other}/story-e"))
    rules[roles["f"]["path"]] = rewrite(with_meta_refresh(f"{other}/plain"))
    rules[roles["g"]["path"]] = redirect(base + roles["h"]["path"])
    rules[roles["deep"]["path"]] = rewrite(nested)
    rules[roles["controls"]["path"]] = rewrite(with_controls)
    rules[roles["flood"]["path"]] = rewrite(with_links(FLOOD_LINKS, FAKE_ID))


async def _other_pages(scene: Scene) -> None:
    """The other host's pages: b's and e's pages under another headline (they still name b
    and e in og:url, canonical and JSON-LD), and a plain page."""
    assert scene.other is not None
    for name in ("b", "e"):
        article = scene.roles[name]
        page = with_headline(await page_of(scene, article), article["title"], OTHER_HEADLINE)
        scene.other.pages[f"/story-{name}"] = page
    scene.other.pages["/plain"] = PLAIN_PAGE


def content_front(scene: Scene) -> Front:
    inner = front(scene, cast_content)

    @asynccontextmanager
    async def make(server: ReplicaServer) -> AsyncIterator[str]:
        async with inner(server) as base:
            await _other_pages(scene)
            yield base

    return make


@dataclass
class Outcome:
    crawl: Crawl
    scene: Scene
    stored: dict[int, dict[str, Any]]
    failures: dict[str, dict[str, Any]]
    revisions: list[dict[str, Any]]
    report: dict[str, Any]
    dead: dict[str, dict[str, Any]]
    logged: list[str]


def outcome_of(
    crawl: Crawl, scene: Scene, redis_url: str, mongo_uri: str, logged: list[str]
) -> Outcome:
    with database(mongo_uri, crawl) as db:
        stored = {doc["_id"]: doc for doc in db.articles.find()}
        failures = {doc["url"]: doc for doc in db.failures.find()}
        revisions = list(db.revisions.find())
        report = db.runs.find_one({"_id": crawl.stats.get("tass/run/ended_by_this_worker")})
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.hgetall(FrontierKeys(crawl.prefix).dead)
    finally:
        client.close()
    dead = {k.decode(): json.loads(v) for k, v in raw.items()}
    assert report is not None, "no run report"
    return Outcome(crawl, scene, stored, failures, revisions, report, dead, logged)


def crawl_logged(
    redis_url: str, mongo_uri: str, scene_front: Front, **extra: Any
) -> tuple[Crawl, list[str]]:
    records = Records()
    loggers = [logging.getLogger(n) for n in ("crawler", "pipelines")]
    for lg in loggers:
        lg.addHandler(records)
    try:
        crawl = run_crawl(redis_url, mongo_uri, front=scene_front, **extra)
    finally:
        for lg in loggers:
            lg.removeHandler(records)
    return crawl, records.messages


@pytest.fixture(scope="module")
def content(redis_server, mongo_server) -> Iterator[Outcome]:
    scene = Scene()
    crawl, logged = crawl_logged(redis_server.url, mongo_server.url, content_front(scene))
    try:
        yield outcome_of(crawl, scene, redis_server.url, mongo_server.url, logged)
    finally:
        cleanup(crawl, redis_server.url, mongo_server.url)


def url_of(outcome: Outcome, name: str) -> str:
    return str(outcome.scene.roles[name]["url"])


def id_of(outcome: Outcome, name: str) -> int:
    return int(outcome.scene.roles[name]["id"])


# --- 1. nothing from another host ------------------------------------------------------------


def test_nothing_is_fetched_from_another_host(content) -> None:
    scene = content.scene
    assert scene.other is not None and scene.proxy is not None
    assert scene.other.asked == []
    # Every answer that redirected to the other host was refused (a URL whose failure cleared
    # its seen bit may be asked for again when another page links to it).
    answered = sum(scene.proxy.answered[scene.roles[n]["path"]] for n in "acdf")
    assert answered >= 4
    assert content.crawl.stats["tass/offsite/redirects_refused"] == answered


@pytest.mark.parametrize("name", ["a", "c", "d", "f"])
def test_a_redirect_to_another_host_is_a_failure_of_the_url_asked_for(content, name) -> None:
    url = url_of(content, name)
    assert id_of(content, name) not in content.stored
    failure = content.failures.get(url)
    assert failure is not None, f"no failure for {url}: {sorted(content.failures)}"
    assert failure["reason"] == "offsite_redirect"
    assert failure["article_id"] == id_of(content, name)
    assert content.scene.other is not None and content.scene.other.url in failure["detail"]
    # Its dead letter replays the URL that was asked for, not the other host's.
    letter = content.dead[url]
    assert json.loads(letter["request"])["url"] == url
    assert not any(content.scene.other.url in u for u in content.failures)


@pytest.mark.parametrize("name", ["b", "e", "h"])
def test_the_article_another_page_claims_to_be_is_stored_as_itself(content, name) -> None:
    article = content.scene.roles[name]
    doc = content.stored[article["id"]]
    assert doc["title"] == article["title"] != OTHER_HEADLINE
    assert doc["revision"] == 1
    assert [r for r in content.revisions if r["article_id"] == article["id"]] == []


def test_a_redirect_to_another_article_of_the_site_fails_the_url_asked_for(content) -> None:
    url = url_of(content, "g")
    assert id_of(content, "g") not in content.stored
    failure = content.failures[url]
    assert failure["reason"] == "redirected_away"
    assert url_of(content, "h") in failure["detail"]
    assert json.loads(content.dead[url]["request"])["url"] == url


def test_the_run_report_counts_the_refused_redirects(content) -> None:
    by_reason = content.report["failures_by_reason"]
    assert by_reason["offsite_redirect"] == 4
    assert by_reason["redirected_away"] == 1
    expected = {
        a["id"]
        for a in content.scene.truth["articles"]
        if a["reachable"] and a["id"] not in {id_of(content, n) for n in "acdfg"}
    }
    assert set(content.stored) == expected
    assert content.report["counters"]["run/articles"] == len(expected)


# --- 2. deep pages and exceptions nobody expected ------------------------------------------


def test_an_article_nested_a_thousand_deep_is_stored_whole(content) -> None:
    article = content.scene.roles["deep"]
    doc = content.stored.get(article["id"])
    assert doc is not None, content.failures.get(article["url"])
    assert doc["body"] == "\n\n".join(article["body"])
    assert doc["title"] == article["title"]


class Surprise(Exception):
    """What nobody expects."""


class SurprisedSpider(TassSpider):
    """The spider, surprised by one page (the one the proxy marks)."""

    name = "tass"

    def parse_article(self, response: Response) -> Iterator[Any]:
        if b"<!-- surprise -->" in response.body:
            raise Surprise("a page nobody had planned for")
        yield from super().parse_article(response)


def test_an_unexpected_exception_is_a_recorded_failure_of_that_url(
    redis_server, mongo_server
) -> None:
    scene = Scene()

    def cast(scene: Scene, base: str) -> None:
        assert scene.proxy is not None
        scene.roles["odd"] = ordinary(scene.truth)[0]
        marked = rewrite(lambda page: page.replace(b"<body>", b"<body><!-- surprise -->", 1))
        scene.proxy.rules[scene.roles["odd"]["path"]] = marked

    crawl, logged = crawl_logged(
        redis_server.url, mongo_server.url, front(scene, cast), spider=SurprisedSpider
    )
    try:
        outcome = outcome_of(crawl, scene, redis_server.url, mongo_server.url, logged)
        url = url_of(outcome, "odd")
        assert id_of(outcome, "odd") not in outcome.stored
        failure = outcome.failures[url]
        assert failure["reason"] == "extraction_error:Surprise"
        assert "a page nobody had planned for" in failure["detail"]
        assert json.loads(outcome.dead[url]["request"])["url"] == url
        assert outcome.report["failures_by_reason"] == {"extraction_error:Surprise": 1}
        # A dead letter lets a later naming of the article fetch it once more in the run, never
        # a third time (lua.push, run_failed): one failure per fetch, one or two fetches.
        handled = [m for m in logged if "Unexpected Surprise while handling " + url in m]
        assert 1 <= len(handled) <= 2
        assert outcome.report["counters"]["run/failures"] == len(handled)
        assert (
            len(outcome.stored) == len([a for a in scene.truth["articles"] if a["reachable"]]) - 1
        )
    finally:
        cleanup(crawl, redis_server.url, mongo_server.url)


# --- 9. control characters -----------------------------------------------------------------


def _not_text(value: str, allowed: str = "") -> list[str]:
    return [repr(c) for c in value if c not in allowed and unicodedata.category(c) in ("Cc", "Cs")]


def test_control_characters_are_stripped_from_titles_and_bodies(content) -> None:
    article = content.scene.roles["controls"]
    doc = content.stored.get(article["id"])
    assert doc is not None, content.failures.get(article["url"])
    assert doc["title"] == article["title"]
    assert doc["lead"] == article["lead"]
    assert doc["body"] == "\n\n".join(article["body"])
    assert doc["dateline"] == article["dateline"]
    for name, value in doc.items():
        if isinstance(value, str):
            assert _not_text(value, "\n" if name == "body" else "") == [], name


# --- 4. link floods --------------------------------------------------------------------------


def test_a_page_of_fifty_thousand_links_is_followed_only_to_its_cap(content) -> None:
    article = content.scene.roles["flood"]
    stats, counters = content.crawl.stats, content.report["counters"]
    # The article itself is stored; of its links, the first TASS_MAX_PAGE_LINKS were taken.
    assert article["id"] in content.stored
    cap = defaults.TASS_MAX_PAGE_LINKS
    not_found = content.crawl.site["by_kind"].get("not_found", 0)
    assert 0 < not_found <= cap
    assert stats["tass/links/pages_cut"] == counters["links/pages_cut"] == 1
    assert FLOOD_LINKS - cap <= stats["tass/links/page_cut"] == counters["links/page_cut"]
    assert stats["tass/links/page_cut"] < FLOOD_LINKS
    assert any(f"Link cap: {article['url']} holds" in m and "left" in m for m in content.logged), (
        content.logged[-5:]
    )
    # The 404s are recorded failures like any other.
    assert content.report["failures_by_reason"]["http_404"] == not_found


def test_links_from_pages_are_capped_for_the_whole_run(redis_server, mongo_server) -> None:
    scene = Scene()
    pages, per_page, page_cap, run_cap = 3, 2000, 100, 150

    def cast(scene: Scene, base: str) -> None:
        assert scene.proxy is not None
        for n, article in enumerate(ordinary(scene.truth)[:pages]):
            scene.roles[f"flood{n}"] = article
            scene.proxy.rules[article["path"]] = rewrite(with_links(per_page, FAKE_ID + 10**5 * n))

    crawl, logged = crawl_logged(
        redis_server.url,
        mongo_server.url,
        front(scene, cast),
        TASS_MAX_PAGE_LINKS=page_cap,
        TASS_MAX_RUN_LINKS=run_cap,
    )
    try:
        outcome = outcome_of(crawl, scene, redis_server.url, mongo_server.url, logged)
        counters = outcome.report["counters"]
        # Never more than the run's cap of new links from pages was queued, whoever found them.
        assert counters["links/queued"] == run_cap
        assert crawl.site["by_kind"].get("not_found", 0) <= run_cap
        assert counters["links/run_cut"] >= pages * page_cap - run_cap
        assert counters["links/pages_cut"] == pages
        # Each cut is logged with the pages its links were found on (the floods, and any other
        # page whose links came after the cap was reached), the most cut first.
        found = [re.search(r"; (\d+) more not followed, found on (.*)", m) for m in logged]
        cuts = [(int(m[1]), m[2]) for m in found if m is not None]
        assert sum(n for n, _ in cuts) == counters["links/run_cut"]
        named = {page.split(" (")[0] for _, pages in cuts for page in pages.split(", ")}
        floods = {a["url"] for a in scene.roles.values()}
        assert floods & named
        # Every article still came from the listings: a refused link is not marked seen.
        reachable = {a["id"] for a in scene.truth["articles"] if a["reachable"]}
        assert set(outcome.stored) == reachable
    finally:
        cleanup(crawl, redis_server.url, mongo_server.url)
