"""Every page kind, and the ground truth against what the pages show."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest

from tests.replica.conftest import BROWSER_UA, Replica

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SECTIONS = {
    "politics": 4954,
    "world": 4844,
    "economy": 4845,
    "defense": 4953,
    "science": 4957,
    "emergencies": 4992,
    "society": 4956,
    "pressreview": 4981,
    "sports": 4869,
}


def norm(value: str) -> str:
    return " ".join(value.split())


def extract(page: str) -> dict[str, Any]:
    """A small variant-aware extractor written from the documented markup."""
    doc = lxml.html.fromstring(page)
    root = doc.cssselect(
        "main.container .news, main.container .article, "
        "main.container .interview, main.container .opinion"
    )[0]
    leads = root.cssselect(".news-header__lead, .article-lead, .opinion-header__lead")
    lead = norm(leads[0].text_content()) if leads else ""
    body = []
    related = []
    for block in root.cssselect("div.text-content div.text-block"):
        for el in block:
            strong = el.find("strong")
            if el.tag == "p" and strong is not None and strong.text == "Read also":
                related += [a.get("href") for a in el.iter("a")]
            elif el.tag in ("p", "h2", "blockquote"):
                body.append(norm(el.text_content()))
            elif "read-also" in el.classes or el.tag == "aside":
                related += [a.get("href") for a in el.iter("a")]
    marks = root.cssselect("[class$='-header__mark'], span.tag-label, .marks__item")
    ld = [json.loads(s.text) for s in doc.cssselect('script[type="application/ld+json"]')]
    return {
        "root": root.get("class"),
        "title": norm(root.cssselect("h1")[0].text_content()),
        "lead": lead or None,
        "published": int(root.cssselect("dateformat")[0].get("time")),
        "body": body,
        "tags": [norm(a.text_content()) for a in root.cssselect("div.tags__list a.tags__item")],
        "mark": norm(marks[0].text_content()) if marks else None,
        "images": [img.get("src") for img in root.cssselect("div.news-media img")],
        "related": [urlsplit(h).path for h in related],
        "ld": ld,
        "page_title": doc.findtext(".//title"),
        "og_title": doc.cssselect('meta[property="og:title"]')[0].get("content"),
        "og_description": doc.cssselect('meta[property="og:description"]')[0].get("content"),
        "canonical": [link.get("href") for link in doc.cssselect('link[rel="canonical"]')],
        "captions": norm(
            " ".join(
                e.text_content()
                for e in root.cssselect(".news-media__caption, figcaption, p.news-media__text")
            )
        ),
    }


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def sample(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Up to six articles of each kind, plus copies, russia-prefixed and edited ones."""
    out: dict[int, dict[str, Any]] = {}
    for kind in ("news", "article", "interview", "opinion", "gallery"):
        for a in [a for a in truth["articles"] if a["kind"] == kind][-6:]:
            out[a["id"]] = a
    for a in truth["articles"]:
        if a["duplicate_of"] or a["section"] == "russia" or a["revision"] > 1 or not a["lead"]:
            out[a["id"]] = a
    hostile = {h["url"] for h in truth["hostile"]}
    return [a for a in out.values() if a["url"] not in hostile]


def test_truth_shape(truth: dict[str, Any]) -> None:
    arts = truth["articles"]
    assert len(arts) == 400
    assert truth["day"] == 0
    assert truth["sections"] == SECTIONS
    assert max(a["id"] for a in arts) == 2_198_933
    assert all(a["id"] % 2 == 1 for a in arts)
    assert len({a["id"] for a in arts}) == len(arts)
    kinds = {a["kind"] for a in arts}
    assert kinds == {"news", "article", "interview", "opinion", "gallery"}
    assert any(a["section"] == "russia" for a in arts)
    assert any(a["section"] not in SECTIONS and a["section"] != "russia" for a in arts)
    for a in arts:
        assert a["url"] == truth["base_url"] + a["path"]
        assert a["path"] == f"/{a['section']}/{a['id']}"
        assert 400 <= sum(len(p) for p in a["body"]) <= 4500
        for p in a["body"]:
            assert p == " ".join(p.split())
        if a["kind"] == "interview":
            assert a["lead"] is None
        if a["dateline"]:
            assert a["body"][0].startswith(f"{a['dateline']}, ")
            assert re.match(
                r"^[A-Z][A-Z. ]*[A-Z.]( /[A-Za-z ]+/)?, [A-Z][a-z]+ \d{1,2}\. /TASS/\. ",
                a["body"][0],
            )
    by_id = {a["id"]: a for a in arts}
    dups = [a for a in arts if a["duplicate_of"]]
    for d in dups:
        orig = by_id[d["duplicate_of"]]
        assert d["id"] > orig["id"] and d["body"] != orig["body"]
        same = sum(1 for x, y in zip(d["body"], orig["body"], strict=False) if x == y)
        assert same >= len(d["body"]) - 3 and d["body"][0] == orig["body"][0]


def test_article_pages_agree_with_truth(replica: Replica, truth: dict[str, Any]) -> None:
    kinds_seen = set()
    for a in sample(truth):
        reply = replica.get(a["path"])
        assert reply.status == 200, a["path"]
        assert reply.headers["content-type"].startswith("text/html")
        page = reply.body.decode("utf-8")
        got = extract(page)
        kinds_seen.add(got["root"])
        assert got["title"] == a["title"]
        assert got["page_title"] == a["title"] + " - TASS"
        assert got["og_title"] == a["title"] + " - TASS"
        assert got["og_description"] == (a["lead"] or "")
        assert got["lead"] == a["lead"]
        assert got["published"] == ts(a["published_at"])
        assert got["body"] == a["body"], a["path"]
        assert got["tags"] == a["tags"]
        assert got["mark"] == a["mark"]
        assert got["images"] == [img["url"] for img in a["images"]]
        for img in a["images"]:
            assert img["caption"] in got["captions"] and img["credit"] in got["captions"]
            assert re.match(
                r"^© (AP Photo|REUTERS|EPA|AFP)/|^© [A-Z][a-z]+ [A-Z][a-z]+/TASS$", img["credit"]
            )
        assert got["related"] == [urlsplit(r["url"]).path for r in a["related"]]
        article_ld = got["ld"][-1]
        assert article_ld["@type"] == "NewsArticle"
        assert article_ld["headline"] == a["title"]
        assert ts(article_ld["datePublished"]) == ts(a["published_at"])
        assert ts(article_ld["dateModified"]) == ts(a["modified_at"])
        assert article_ld["datePublished"].endswith("+03:00")
        for forbidden in ("Read also", "Реклама", "{{"):
            assert all(forbidden not in p for p in a["body"])
        assert "Реклама" in page and "{{newsPoint.title}}" in page and "Most read" in page
    assert kinds_seen == {"news", "article", "interview", "opinion"}


def test_variants_present(replica: Replica, truth: dict[str, Any]) -> None:
    """Each [GUESS] markup comes in more than one variant across the archive."""
    seen: dict[str, set[str]] = {
        k: set() for k in ("canonical", "caption", "readalso", "mark", "tags")
    }
    for a in truth["articles"][-150:]:
        page = replica.get(a["path"]).body.decode("utf-8", "replace")
        seen["canonical"].add(str('rel="canonical"' in page))
        for marker in ("news-media__caption-text", "<figcaption>", "news-media__text"):
            if marker in page:
                seen["caption"].add(marker)
        for marker in ('class="read-also"', "<strong>Read also</strong>", "article-aside"):
            if marker in page:
                seen["readalso"].add(marker)
        for marker in ('class="tags__item" href="/tag/', 'class="tags__item" href="/tags/'):
            if marker in page:
                seen["tags"].add(marker)
        for marker in ("-header__mark", "tag-label", "marks__item"):
            if marker in page:
                seen["mark"].add(marker)
    assert seen["canonical"] == {"True", "False"}
    assert len(seen["caption"]) == 3
    assert len(seen["readalso"]) == 3
    assert len(seen["mark"]) == 3
    assert len(seen["tags"]) == 2


def test_gallery_has_slider(replica: Replica, truth: dict[str, Any]) -> None:
    gallery = next(a for a in reversed(truth["articles"]) if a["kind"] == "gallery")
    doc = lxml.html.fromstring(replica.get(gallery["path"]).body)
    slides = doc.cssselect(".gallery-slider .gallery-slider__item")
    assert len(slides) == len(gallery["images"]) >= 4
    assert doc.cssselect("main.container .news h1.news-header__title")


def test_home(replica: Replica, truth: dict[str, Any]) -> None:
    reply = replica.get("/")
    assert reply.status == 200
    doc = lxml.html.fromstring(reply.body)
    hrefs = {a.get("href") for a in doc.iter("a")}
    for slug in SECTIONS:
        assert f"/{slug}" in hrefs
    assert "/today" in hrefs and "/military-operation-in-ukraine" in hrefs
    assert any("utm_source" in (h or "") for h in hrefs)
    for h in truth["hostile"]:
        assert h["path"] in hrefs


@pytest.mark.parametrize("slug", list(SECTIONS))
def test_section_pages(replica: Replica, truth: dict[str, Any], slug: str) -> None:
    reply = replica.get(f"/{slug}")
    assert reply.status == 200
    doc = lxml.html.fromstring(reply.body)
    init = doc.cssselect(".container .section-page")[0].get("ng-init")
    assert f"sectionId = {SECTIONS[slug]};" in init
    links = [
        a.get("href")
        for a in doc.cssselect(".news-list__item > a.news-preview.news-preview_default[href]")
    ]
    titles = doc.cssselect(".news-list__item > a.news-preview .news-preview__title")
    assert 1 <= len(links) <= 20
    assert len(titles) >= len(links)
    paths = {a["path"] for a in truth["articles"]}
    assert all(link in paths for link in links)
    feed = replica.post(
        "/userApi/categoryNewsList", {"sectionId": SECTIONS[slug], "limit": 20, "type": "all"}
    ).json()
    assert [i["link"] for i in feed["newsList"]] == links
    assert doc.findtext(".//title") == doc.cssselect("h1")[0].text_content() + " - TASS"


def test_theme_page(replica: Replica, truth: dict[str, Any]) -> None:
    for slug, tid in truth["themes"].items():
        reply = replica.get(f"/{slug}")
        assert reply.status == 200
        doc = lxml.html.fromstring(reply.body)
        assert f"sectionId = {tid};" in doc.cssselect(".section-page")[0].get("ng-init")
        cards = doc.cssselect("a.theme-item[href]")
        assert all(c.cssselect(".theme-item__title") for c in cards)
    ukraine = lxml.html.fromstring(replica.get("/military-operation-in-ukraine").body)
    assert ukraine.cssselect("a.theme-item[href]")


def test_tag_pages_reach_russia_articles(replica: Replica, truth: dict[str, Any]) -> None:
    russia = [a for a in truth["articles"] if a["section"] == "russia"]
    assert russia
    reached: set[str] = set()
    tag_paths: set[str] = set()
    for a in russia:
        page = lxml.html.fromstring(replica.get(a["path"]).body)
        tag_paths |= {t.get("href") for t in page.cssselect("div.tags__list a.tags__item")}
    for path in sorted(tag_paths):
        url = path
        while url:
            reply = replica.get(url)
            if url.startswith("/tags/"):
                assert reply.status == 301
                reply = replica.get(reply.headers["location"])
            assert reply.status == 200, url
            doc = lxml.html.fromstring(reply.body)
            reached |= {x.get("href") for x in doc.cssselect("a.news-preview")}
            nxt = doc.cssselect("a.pagination__next")
            url = nxt[0].get("href") if nxt else ""
    assert {a["path"] for a in russia} <= reached
    home = replica.get("/").text
    sections = "".join(replica.get(f"/{s}").text for s in SECTIONS)
    for a in russia:
        assert a["path"] not in home and a["path"] not in sections
    assert replica.get("/tag/no-such-tag").status == 404
    assert replica.get("/tags/no-such-tag").status == 404


def test_robots(replica: Replica) -> None:
    reply = replica.get("/robots.txt")
    assert reply.status == 200
    lines = reply.text.splitlines()
    assert lines[0] == "User-agent: *"
    assert "Disallow: /search" in lines and "Disallow: /preview/" in lines
    assert f"Sitemap: {replica.base}/sitemap.xml" in lines
    assert not any(line.startswith("Crawl-delay") for line in lines)


def test_crawl_delay(start_replica: Any) -> None:
    rep = start_replica("--articles", "50", "--crawl-delay", "2.5")
    assert "Crawl-delay: 2.5" in rep.get("/robots.txt").text.splitlines()


def test_rss(replica: Replica, truth: dict[str, Any]) -> None:
    reply = replica.get("/rss/v2.xml", ua=BROWSER_UA)
    assert reply.status == 200
    root = ET.fromstring(reply.body)
    items = root.findall("./channel/item")
    assert len(items) == 100
    by_url = {a["url"]: a for a in truth["articles"]}
    prev = None
    for item in items:
        a = by_url[item.findtext("link")]
        assert item.findtext("title") == a["title"]
        assert (item.findtext("description") or "") == (a["lead"] or "")
        pub = item.findtext("pubDate")
        assert re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0300$", pub)
        when = datetime.strptime(pub, "%a, %d %b %Y %H:%M:%S %z")
        assert int(when.timestamp()) == ts(a["published_at"])
        assert prev is None or when <= prev
        prev = when
        assert a["section"] != "russia" and a["reachable"]


def test_sitemaps(replica: Replica, truth: dict[str, Any]) -> None:
    index = ET.fromstring(replica.get("/sitemap.xml").body)
    locs = [e.findtext(f"{SM}loc") for e in index.findall(f"{SM}sitemap")]
    assert locs == [f"{replica.base}/sitemap/sitemap_news{n}.xml" for n in range(10)]
    seen: list[str] = []
    newest: list[int] = []
    by_url = {a["url"]: a for a in truth["articles"]}
    for loc in locs:
        root = ET.fromstring(replica.get(urlsplit(loc).path).body)
        entries = root.findall(f"{SM}url")
        assert entries
        for url in entries:
            a = by_url[url.findtext(f"{SM}loc")]
            lastmod = url.findtext(f"{SM}lastmod")
            assert lastmod.endswith("+03:00")
            assert ts(lastmod) == ts(a["modified_at"])
            seen.append(a["url"])
        newest.append(ts(by_url[entries[0].findtext(f"{SM}loc")]["published_at"]))
    assert newest == sorted(newest, reverse=True)
    reachable = {a["url"] for a in truth["articles"] if a["reachable"]}
    assert sorted(seen) == sorted(reachable)
    assert any(not a["reachable"] for a in truth["articles"]) or len(truth["articles"]) < 1000


def test_today_and_404(replica: Replica) -> None:
    today = replica.get("/today")
    assert today.status == 200 and "About TASS" in today.text
    assert "news-header__title" not in today.text
    for path in ("/nope", "/politics/2", "/politics/9999999", "/unknown-seg/2198933", "/a/b/c"):
        assert replica.get(path).status == 404, path


def test_redirects(replica: Replica, truth: dict[str, Any]) -> None:
    sports = next(a for a in truth["articles"] if a["section"] == "sports")
    r = replica.get(f"/sport/{sports['id']}")
    assert r.status == 301 and r.headers["location"] == sports["path"]
    assert replica.get("/sport").headers["location"] == "/sports"
    assert replica.get("/politics/").headers["location"] == "/politics"
    politics = next(a for a in truth["articles"] if a["section"] == "politics")
    r = replica.get(f"/world/{politics['id']}")
    assert r.status == 301 and r.headers["location"] == politics["path"]
    r = replica.get(f"/news-index/{politics['id']}")
    assert r.status == 301 and r.headers["location"] == politics["path"]
    r = replica.get(politics["path"] + "?utm_source=tass.com&utm_medium=referral")
    assert r.status == 301 and r.headers["location"] == politics["path"]
    r = replica.get(politics["path"], headers={"Host": "www.tass.com"})
    assert r.status == 301 and r.headers["location"] == politics["url"]
    themed = next(
        a for a in truth["articles"] if a["section"] not in SECTIONS and a["section"] != "russia"
    )
    r = replica.get(f"/{themed['home_section']}/{themed['id']}")
    assert r.status == 301 and r.headers["location"] == themed["path"]
    assert replica.get(themed["path"]).status == 200


def test_utm_links_appear_and_redirect(replica: Replica, truth: dict[str, Any]) -> None:
    home = lxml.html.fromstring(replica.get("/").body)
    utm = [a.get("href") for a in home.iter("a") if "utm_" in (a.get("href") or "")]
    assert utm
    r = replica.get(utm[0])
    assert r.status == 301 and "?" not in r.headers["location"]


@pytest.mark.parametrize(
    "ua",
    [
        None,
        "",
        "python-requests/2.32.3",
        "Python-urllib/3.11",
        "curl/8.5.0",
        "Wget/1.21.4",
        "Python/3.11 aiohttp/3.14.5",
        "Go-http-client/1.1",
        "Scrapy/2.13.3 (+https://scrapy.org)",
    ],
)
def test_forbidden_user_agents(replica: Replica, truth: dict[str, Any], ua: str | None) -> None:
    article = truth["articles"][-1]["path"]
    for path in ("/", article, "/rss/v2.xml", "/robots.txt"):
        assert replica.get(path, ua=ua).status == 403, (path, ua)
    assert replica.post("/userApi/categoryNewsList", {"sectionId": 4954}, ua=ua).status == 403


@pytest.mark.parametrize(
    "ua",
    [
        "tass-crawler/0.1 (+https://example.org/contact)",
        BROWSER_UA,
        "Scrapy/2.13 (+https://example.org/contact)",
    ],
)
def test_allowed_user_agents(replica: Replica, truth: dict[str, Any], ua: str) -> None:
    for path in ("/", truth["articles"][-1]["path"], "/rss/v2.xml", "/sitemap.xml"):
        assert replica.get(path, ua=ua).status == 200, (path, ua)


def test_rss_wants_an_identified_agent(replica: Replica) -> None:
    assert replica.get("/rss/v2.xml", ua="SomeTool/1.0").status == 403
    assert replica.get("/", ua="SomeTool/1.0").status == 200


def test_head_request(replica: Replica, truth: dict[str, Any]) -> None:
    r = replica.request("HEAD", truth["articles"][-1]["path"])
    assert r.status == 200 and r.body == b""


def test_escaping(replica: Replica, truth: dict[str, Any]) -> None:
    tricky = [a for a in truth["articles"] if any(c in a["title"] for c in "\"'&")]
    assert tricky
    for a in tricky[:5]:
        got = extract(replica.get(a["path"]).text)
        assert got["title"] == a["title"]
