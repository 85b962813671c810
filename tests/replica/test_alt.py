"""``--markup alt``: the truth matches the alternative pages, and they share no guessed shape
with the default markup.

``extract_alt`` is written from the replica README's description of the alternative shapes (not
from ``replica.alt``), the way ``test_pages.extract`` is written from the default's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
from lxml.html import HtmlElement

from tests.replica.conftest import ARTICLES, Replica
from tests.replica.test_pages import SECTIONS, extract

LOGO = "https://tass.com/img/blocks/common/tass_logo_share_en.png"
ROOTS = "main.container .news, main.container .article, main.container .interview, "
ROOTS += "main.container .opinion"
READ_ALSO = ("incut", "read-more", "news-cards")
INLINE = ("text-figure", "embed-photo", "text-photo", "text-photo__sign")
DEFAULT_GUESS_CLASSES = {
    # theme label
    "news-header__mark", "article-header__mark", "interview-header__mark", "mark", "tag-label",
    "marks", "marks__item",
    # photo, caption and credit
    "news-media__image", "news-media__caption", "news-media__caption-text",
    "news-media__copyright", "copyright", "news-media__text",
    # gallery
    "gallery-slider", "gallery-slider__list", "gallery-slider__item", "gallery-slider__prev",
    "gallery-slider__next",
    # "Read also"
    "read-also", "read-also__title", "read-also__link", "article-aside", "article-aside__title",
    # tag container, header furniture, bylines, ads, share buttons
    "tags", "news-header__date", "article__date", "interview-header__date",
    "opinion-header__date", "article__header", "news-header__updated", "article-header__updated",
    "opinion-header__updated", "interview-header__author",
    "interview-header__author-name", "opinion-header__author", "opinion-header__author-name",
    "opinion-header__author-position", "ad", "ad__label", "ad__slot", "share", "share__title",
    "share__item",
}  # fmt: skip
DEFAULT_GUESS_PATTERN = re.compile(r"-header__(mark|updated|date|author)")
"""The default's per-template header classes, some of which a small archive never shows."""


def unbased(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """The truth's articles with the base URL cut from every URL (ports differ per process)."""
    articles: list[dict[str, Any]] = json.loads(
        json.dumps(truth["articles"]).replace(json.dumps(truth["base_url"])[1:-1], "")
    )
    return articles


def norm(value: str) -> str:
    return " ".join(value.split())


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def classes(el: HtmlElement) -> set[str]:
    return set((el.get("class") or "").split())


def _text_without(el: HtmlElement, drop: str) -> str:
    """``el``'s text without its descendants matching the CSS selector ``drop``."""
    copy = lxml.html.fromstring(lxml.html.tostring(el))
    for child in copy.cssselect(drop):
        child.drop_tree()
    return norm(copy.text_content())


def _photo(img: HtmlElement) -> tuple[str, str]:
    """(caption, credit) of one photo, from the shapes the README describes."""
    parent = img.getparent()
    up = parent.getparent()
    pc = classes(parent)
    if "news-media" in pc and img.getprevious() is not None:  # credit overlay, caption after
        caption = parent.getnext()
        assert "photo-caption" in classes(caption)
        return norm(caption.text_content()), norm(img.getprevious().text_content())
    if parent.tag == "source":  # an HTML4 parser nests the img inside the void <source>
        parent = parent.getparent()
    if parent.tag == "picture":  # picture + source, "caption<br>© credit"
        text = parent.getnext()
        assert "image-text" in classes(text)
        br = text.find("br")
        return norm(text.text or ""), norm(br.tail or "")
    if "news-media" in pc:  # caption in alt/title only, credit in cite
        assert img.get("alt") == img.get("title")
        return norm(img.get("alt")), norm(parent.find("cite").text_content())
    if "text-figure" in pc:
        caption = parent.find("figcaption")
        return _text_without(caption, "small"), norm(caption.find("small").text_content())
    if "embed-photo" in pc:
        found = [norm(p.text_content()) for p in parent.findall("p")]
        return found[0], found[1]
    if "text-photo" in pc:
        sign = parent.getnext()
        assert "text-photo__sign" in classes(sign)
        return norm(sign.find("em").text_content()), _text_without(sign, "em")
    if "swiper-slide" in pc:
        found = [norm(p.text_content()) for p in parent.cssselect(".swiper-slide__text p")]
        return found[0], found[1]
    if up.tag == "li" and "photoreport__item" in classes(up):
        caption = parent.find("figcaption")
        credit = caption.cssselect(".photoreport__author")[0]
        return _text_without(caption, ".photoreport__author"), norm(credit.text_content())
    raise AssertionError(f"unknown photo shape: {lxml.html.tostring(parent)[:200]!r}")


def extract_alt(page: str) -> dict[str, Any]:
    doc = lxml.html.fromstring(page)
    root = doc.cssselect(ROOTS)[0]
    header = root.find("header")
    h1 = header.cssselect("h1")[0]
    labels = []
    for el in header:
        if el is h1 or h1 in el.iterdescendants():
            break
        if classes(el) & {"rubric", "kicker", "topic"}:
            labels.append(norm(el.text_content()))
    assert len(labels) <= 1
    leads = header.cssselect(".news-header__lead, .article-lead, .opinion-header__lead")
    body: list[str] = []
    related: list[tuple[str, str]] = []
    shapes: set[str] = set()
    for block in root.cssselect("div.text-content > div.text-block"):
        for el in block:
            cls = classes(el)
            if cls & set(READ_ALSO):
                shapes |= cls & set(READ_ALSO)
                for a in el.iter("a"):
                    title = a.cssselect(".news-card__title")
                    related.append((a.get("href"), norm((title or [a])[0].text_content())))
            elif cls & set(INLINE):
                shapes |= cls & set(INLINE)
            elif el.tag in ("p", "h2", "blockquote") and not cls - {"quote"}:
                body.append(norm(el.text_content()))
            else:
                raise AssertionError(f"unexpected element in the text: {el.tag} {cls}")
    images = [
        (img.get("src"), *_photo(img))
        for img in root.iter("img")
        if "author-card__photo" not in classes(img)
    ]
    ld = [json.loads(s.text) for s in doc.cssselect('script[type="application/ld+json"]')]
    meta = {m.get("property") or m.get("name"): m.get("content") for m in doc.iter("meta")}
    return {
        "root": root,
        "title": norm(h1.text_content()),
        "lead": norm(leads[0].text_content()) if leads else None,
        "published": int(root.cssselect("dateformat")[0].get("time")),
        "body": body,
        "has_text": bool(root.cssselect("div.text-content")),
        "tags": [norm(a.text_content()) for a in root.cssselect("div.tags__list a.tags__item")],
        "tag_hrefs": [a.get("href") for a in root.cssselect("div.tags__list a.tags__item")],
        "mark": labels[0] if labels else None,
        "date_first": "publish-info" in classes(header[0]),
        "images": images,
        "related": related,
        "shapes": shapes,
        "ld": ld,
        "meta": meta,
        "canonical": [link.get("href") for link in doc.cssselect('link[rel="canonical"]')],
    }


@pytest.fixture(scope="module")
def alt(start_replica: Callable[..., Replica]) -> Replica:
    """The shared replica's content (400 articles, seed 7) in the alternative markup."""
    return start_replica("--articles", str(ARTICLES), "--seed", "7", "--markup", "alt")


@pytest.fixture(scope="module")
def alt_truth(alt: Replica) -> dict[str, Any]:
    return alt.truth()


@pytest.fixture(scope="module")
def pages(alt: Replica, alt_truth: dict[str, Any]) -> dict[int, str]:
    """Every article page of the alternative replica, by id (hostile-but-valid ones decoded)."""
    out = {}
    for a in alt_truth["articles"]:
        reply = alt.get(a["path"])
        assert reply.status == 200, a["path"]
        charset = reply.headers["content-type"].rsplit("charset=", 1)[1]
        out[a["id"]] = reply.body.decode(charset, "replace").replace("\ufffd", "")
    return out


def test_truth_changes_only_what_the_markup_shows(
    truth: dict[str, Any], alt_truth: dict[str, Any]
) -> None:
    """Same articles and text; only photos in the text and gallery intros differ."""
    default, alternative = unbased(truth), unbased(alt_truth)
    assert len(alternative) == len(default)
    same = ("id", "path", "kind", "title", "lead", "mark", "tags", "published_at", "modified_at")
    for d, a in zip(default, alternative, strict=True):
        assert {k: d[k] for k in same} == {k: a[k] for k in same}
        assert a["images"][: len(d["images"])] == d["images"]
        if a["kind"] == "gallery":
            assert a["images"] == d["images"]
            assert a["body"] in ([], d["body"])
            if not a["body"]:
                assert a["dateline"] is None and a["related"] == []
            else:
                assert a["related"] == d["related"] and a["dateline"] == d["dateline"]
        else:
            assert (a["body"], a["dateline"], a["related"]) == (
                d["body"],
                d["dateline"],
                d["related"],
            )
    galleries = [a for a in alt_truth["articles"] if a["kind"] == "gallery"]
    assert any(not a["body"] for a in galleries) and any(a["body"] for a in galleries)
    with_inline = [
        a for d, a in zip(default, alternative, strict=True) if len(a["images"]) > len(d["images"])
    ]
    assert len(with_inline) > len(alternative) // 10
    assert any(len(a["images"]) - 1 >= 2 for a in with_inline)


def test_pages_agree_with_truth(alt_truth: dict[str, Any], pages: dict[int, str]) -> None:
    shapes: set[str] = set()
    for a in alt_truth["articles"]:
        got = extract_alt(pages[a["id"]])
        where = a["path"]
        assert got["title"] == a["title"], where
        assert got["lead"] == a["lead"], where
        assert got["published"] == ts(a["published_at"]), where
        assert got["body"] == a["body"], where
        assert got["has_text"] == bool(a["body"]), where
        assert got["mark"] == a["mark"], where
        assert got["tags"] == a["tags"], where
        assert got["images"] == [(i["url"], i["caption"], i["credit"]) for i in a["images"]]
        assert [(urlsplit(h).path, t) for h, t in got["related"]] == [
            (urlsplit(r["url"]).path, r["title"]) for r in a["related"]
        ], where
        article_ld = got["ld"][-1]
        assert article_ld["@type"] == "NewsArticle" and article_ld["headline"] == a["title"]
        assert ts(article_ld["datePublished"]) == ts(a["published_at"])
        assert ts(article_ld["dateModified"]) == ts(a["modified_at"])
        urls = [i["url"] for i in a["images"]]
        assert article_ld["image"] == (urls or [LOGO])
        assert got["meta"]["og:title"] == a["title"] + " - TASS"
        assert got["meta"]["og:image"] == (urls or [LOGO])[0]
        assert len(got["canonical"]) == 1
        assert got["canonical"][0] in (a["path"], a["url"]), where
        shapes |= got["shapes"]
    assert shapes == {*READ_ALSO, *INLINE}


def test_descriptions_without_a_standfirst(
    alt_truth: dict[str, Any], pages: dict[int, str]
) -> None:
    """og:description is the lead; without one it is the opening of the first paragraph."""
    kinds: set[str] = set()
    for a in alt_truth["articles"]:
        meta = extract_alt(pages[a["id"]])["meta"]
        descriptions = {meta["og:description"], meta["description"], meta["twitter:description"]}
        assert len(descriptions) == 1
        (description,) = descriptions
        if a["lead"]:
            assert description == a["lead"]
            continue
        first = a["body"][0]
        undated = re.sub(r"^.*?, [A-Z][a-z]+ \d{1,2}\. /TASS/\. ", "", first, count=1)
        if description == first:
            kinds.add("whole")
        elif description.endswith("...") and first.startswith(description[:-3]):
            assert len(description) <= 200
            kinds.add("cut")
        elif description == undated:
            kinds.add("undated")
        else:
            assert description.endswith("…") and undated.startswith(description[:-1])
            assert len(description) <= 160
            kinds.add("undated")
    assert len(kinds) >= 2


def test_no_default_guess_survives(
    replica: Replica, truth: dict[str, Any], pages: dict[int, str]
) -> None:
    """No class name of the default's [GUESS] parts appears in an alternative article root,
    while every one of them appears in the default pages (so the list is not stale)."""
    in_default: set[str] = set()
    for a in truth["articles"]:
        root = lxml.html.fromstring(replica.get(a["path"]).body).cssselect(ROOTS)[0]
        for el in root.iter():
            in_default |= classes(el)
    assert in_default >= DEFAULT_GUESS_CLASSES, DEFAULT_GUESS_CLASSES - in_default
    for page in pages.values():
        doc = lxml.html.fromstring(page)
        root = doc.cssselect(ROOTS)[0]
        found: set[str] = set()
        for el in root.iter():
            found |= classes(el) & DEFAULT_GUESS_CLASSES
            found |= {c for c in classes(el) if DEFAULT_GUESS_PATTERN.search(c)}
        assert not found
        assert not [s for s in root.iter("strong") if norm(s.text_content()) == "Read also"]
        assert not root.cssselect("div.news-media > figure, aside")


def test_every_alternative_variant_appears(
    alt_truth: dict[str, Any], pages: dict[int, str]
) -> None:
    markers = {
        "label": ('class="rubric"', 'class="kicker"', 'class="topic"'),
        "photo": ('class="photo-author"', "<picture>", 'class="photo-source"'),
        "inline": ('class="text-figure"', 'class="embed-photo"', 'class="text-photo"'),
        "gallery": ('class="swiper photo-gallery"', 'class="photoreport"'),
        "readalso": ('class="incut"', 'class="read-more"', 'class="news-cards"'),
        "tags": ('class="article-footer"', 'class="topics"'),
        "tag_href": ('class="tags__item" href="/tags/', 'class="tags__item" href="/tag/'),
    }
    seen = {part: {m for m in options if any(m in p for p in pages.values())}
            for part, options in markers.items()}  # fmt: skip
    assert seen == {part: set(options) for part, options in markers.items()}
    canonical = {
        "relative" if c.startswith("/") else "absolute"
        for c in (extract_alt(p)["canonical"][0] for p in pages.values())
    }
    assert canonical == {"relative", "absolute"}
    assert {extract_alt(p)["date_first"] for p in pages.values()} == {True, False}


def test_galleries(alt_truth: dict[str, Any], pages: dict[int, str]) -> None:
    for a in (a for a in alt_truth["articles"] if a["kind"] == "gallery"):
        doc = lxml.html.fromstring(pages[a["id"]])
        slides = doc.cssselect(".swiper-slide, .photoreport__item")
        assert len(slides) == len(a["images"]) >= 4
        if not a["body"]:
            assert not doc.cssselect("div.text-content") and a["lead"]


def test_tag_pages_and_links(alt: Replica, alt_truth: dict[str, Any]) -> None:
    """Tag listings live at /tags/<slug>; /tag/<slug> answers 301 there; russia-prefixed
    articles are reachable through them."""
    russia = [a for a in alt_truth["articles"] if a["section"] == "russia"]
    hrefs: set[str] = set()
    for a in russia:
        hrefs |= set(extract_alt(alt.get(a["path"]).text)["tag_hrefs"])
    reached: set[str] = set()
    for href in sorted(hrefs):
        url = href
        while url:
            reply = alt.get(url)
            if url.startswith("/tag/"):
                assert reply.status == 301 and reply.headers["location"].startswith("/tags/")
                reply = alt.get(reply.headers["location"])
            assert reply.status == 200, url
            doc = lxml.html.fromstring(reply.body)
            reached |= {x.get("href") for x in doc.cssselect("li.tag-feed__item > a")}
            nxt = doc.cssselect('a[rel="next"]')
            head_next = doc.cssselect('link[rel="next"]')
            assert [x.get("href") for x in nxt] == [x.get("href") for x in head_next]
            url = nxt[0].get("href") if nxt else ""
    assert {a["path"] for a in russia} <= reached
    assert alt.get("/tags/no-such-tag").status == 404
    assert alt.get("/tag/no-such-tag").status == 404


def test_section_pages_leave_the_list_to_the_api(alt: Replica, alt_truth: dict[str, Any]) -> None:
    for slug, sid in SECTIONS.items():
        doc = lxml.html.fromstring(alt.get(f"/{slug}").body)
        assert f"sectionId = {sid};" in doc.cssselect(".container .section-page")[0].get("ng-init")
        assert doc.cssselect(".news-list__item > a.news-preview[href]") == []
        assert doc.cssselect(".news-list__item > a.news-preview[ng-href]")
    for slug, tid in alt_truth["themes"].items():
        doc = lxml.html.fromstring(alt.get(f"/{slug}").body)
        assert f"sectionId = {tid};" in doc.cssselect(".section-page")[0].get("ng-init")
        assert doc.cssselect("a.theme-item[href]") == []


def test_default_extractor_is_not_enough(alt_truth: dict[str, Any], pages: dict[int, str]) -> None:
    """The default markup's extractor (tests/replica/test_pages.py) misses on the alternative
    pages: the shapes really differ where the default's guesses were."""
    misses = {"mark": 0, "images": 0, "related": 0}
    for a in alt_truth["articles"]:
        try:
            got = extract(pages[a["id"]])
        except IndexError:
            continue
        misses["mark"] += got["mark"] != a["mark"]
        misses["images"] += got["images"] != [i["url"] for i in a["images"]]
        misses["related"] += got["related"] != [urlsplit(r["url"]).path for r in a["related"]]
    assert all(misses.values()), misses
