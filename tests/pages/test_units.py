"""Unit tests of the page objects' small parts: cursor, request body, feeds, hubs, helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.pages import (
    ArticlePage,
    ExtractionError,
    HubPage,
    ListingEntry,
    ListingPage,
    RssPage,
    SitemapIndexPage,
    SitemapPage,
    listing_request_body,
    next_cursor,
)
from crawler.pages.article import dateline_of, split_credit
from crawler.text import clean_text, decode_html, strip_controls, strip_title_suffix
from crawler.urls import SiteUrls

TASS = SiteUrls("https://tass.com")
API = TASS.listing_api_url()


def entry(article_id: int, ts: int) -> ListingEntry:
    return ListingEntry(
        id=article_id,
        url=f"https://tass.com/world/{article_id}",
        date=datetime.fromtimestamp(ts, UTC),
        title="t",
    )


# -- listing ---------------------------------------------------------------------------------


def test_listing_request_body_first_page() -> None:
    assert listing_request_body(4953, 20) == {
        "sectionId": 4953,
        "limit": 20,
        "type": "all",
        "excludeNewsIds": "",
        "imageSize": 434,
    }


def test_listing_request_body_next_page() -> None:
    body = listing_request_body(4953, 20, 1723733825, [2039839, 2039681])
    assert body["timestamp"] == 1723733825
    assert body["excludeNewsIds"] == "2039839,2039681"


def test_listing_page_parses_spec_example() -> None:
    body = (
        b'{"newsList": [{"id": 1690929, "isFlash": 0, "isOnline": 0, "type": "default",'
        b' "mark": "Military operation in Ukraine", "date": 1697423443, "title": " A  title ",'
        b' "subtitle": "", "lead": "x", "image": "//cdn-media.tass.ru/width/434_30f3d9ca/a.jpg",'
        b' "link": "/defense/1690929", "sponsor_id": null, "sponsor_type_id": null},'
        b' {"id": 5, "date": 1697423000, "title": "out of scope", "link": "https://tass.ru/x/5"},'
        b' {"id": "7", "date": "1697422000", "title": "string id", "link": "/sport/7"},'
        b' "junk"], "lastTime": 1697422000}'
    )
    page = ListingPage(API, body, TASS)
    assert [e.id for e in page.entries] == [1690929, 7]
    assert page.entries[0].url == "https://tass.com/defense/1690929"
    assert page.entries[0].title == "A title"
    assert page.entries[0].date == datetime(2023, 10, 16, 2, 30, 43, tzinfo=UTC)
    assert page.entries[1].url == "https://tass.com/sports/7"
    assert page.last_time == 1697422000
    assert page.skipped == 2


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"newsList": null}', b'{"error": "bad request"}', b"\xff\xfe"],
)
def test_listing_page_malformed(body: bytes) -> None:
    with pytest.raises(ExtractionError) as info:
        ListingPage(API, body, TASS)
    assert info.value.reason == "bad_json"


def test_listing_page_empty_list() -> None:
    page = ListingPage(API, '{"newsList": [], "lastTime": null}', TASS)
    assert page.entries == []
    assert page.last_time is None
    assert next_cursor(page.entries, page.last_time, [1, 2]) is None


def test_next_cursor_excludes_ids_at_the_last_second() -> None:
    entries = [entry(9, 300), entry(7, 200), entry(5, 100), entry(3, 100)]
    assert next_cursor(entries, 100, []) == (100, [5, 3])


def test_next_cursor_accumulates_when_a_whole_page_shares_one_second() -> None:
    first = [entry(9, 300), entry(7, 100), entry(5, 100)]
    cursor = next_cursor(first, 100, [])
    assert cursor == (100, [7, 5])
    second = [entry(3, 100), entry(1, 100)]
    assert next_cursor(second, 100, cursor[1]) == (100, [7, 5, 3, 1])


def test_next_cursor_starts_afresh_at_a_new_second() -> None:
    assert next_cursor([entry(3, 100), entry(1, 50)], 50, [7, 5]) == (50, [1])


def test_next_cursor_without_last_time_uses_the_oldest_entry() -> None:
    assert next_cursor([entry(3, 100), entry(1, 50)], None, []) == (50, [1])


def test_next_cursor_stops_when_nothing_new_arrives() -> None:
    """A server that ignores excludeNewsIds must not make the crawler loop."""
    assert next_cursor([entry(7, 100), entry(5, 100)], 100, [7, 5]) is None


# -- feeds -----------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>TASS</title>
<item><title>One</title><link>https://tass.com/politics/2198931</link>
<pubDate>Wed, 07 Oct 2026 16:46:35 +0300</pubDate><description></description></item>
<item><title>Two</title><link>http://www.tass.com/sport/2198929?utm_source=rss</link>
<pubDate>not a date</pubDate></item>
<item><title>Elsewhere</title><link>https://tass.ru/politika/1</link></item>
<item><title>Dup</title><link>https://tass.com/politics/2198931</link></item>
</channel></rss>"""


def test_rss_entries() -> None:
    entries = RssPage(TASS.rss_url(), RSS, TASS).entries()
    assert [e.url for e in entries] == [
        "https://tass.com/politics/2198931",
        "https://tass.com/sports/2198929",
    ]
    assert entries[0].title == "One"
    assert entries[0].published == datetime(2026, 10, 7, 13, 46, 35, tzinfo=UTC)
    assert entries[1].published is None


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&lol3;&ext;</title>
<link>https://tass.com/world/1</link></item></channel></rss>"""


def test_rss_does_not_expand_entities() -> None:
    entries = RssPage(TASS.rss_url(), BOMB, TASS).entries()
    assert [e.url for e in entries] == ["https://tass.com/world/1"]
    assert "lollol" not in entries[0].title  # references stay unexpanded
    assert "root:" not in entries[0].title  # no external entity read


@pytest.mark.parametrize("body", [b"", b"<rss><channel>", b"not xml", b"<html><body/></html>"])
def test_rss_malformed(body: bytes) -> None:
    with pytest.raises(ExtractionError) as info:
        RssPage(TASS.rss_url(), body, TASS)
    assert info.value.reason == "bad_xml"


def test_sitemap_index_and_sitemap() -> None:
    index = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://tass.com/sitemap/sitemap_news0.xml</loc></sitemap>
<sitemap><loc>https://example.org/sitemap_news1.xml</loc></sitemap>
<sitemap><loc>https://tass.com/sitemap/sitemap_news1.xml</loc></sitemap>
</sitemapindex>"""
    assert SitemapIndexPage(TASS.sitemap_index_url(), index, TASS).sitemaps() == [
        "https://tass.com/sitemap/sitemap_news0.xml",
        "https://tass.com/sitemap/sitemap_news1.xml",
    ]
    urlset = b"""<urlset>
<url><loc>https://tass.com/politics/2149717</loc><lastmod>2026-06-22T10:50:00+03:00</lastmod></url>
<url><loc>https://tass.com/world/2149715</loc><lastmod>2026-06-22</lastmod></url>
<url><loc>https://tass.com/world/2149713</loc></url>
<url><loc>mailto:x@tass.com</loc></url>
</urlset>"""
    entries = SitemapPage("https://tass.com/sitemap/sitemap_news0.xml", urlset, TASS).entries()
    assert [(e.url, e.lastmod) for e in entries] == [
        ("https://tass.com/politics/2149717", datetime(2026, 6, 22, 7, 50, tzinfo=UTC)),
        ("https://tass.com/world/2149715", datetime(2026, 6, 21, 21, 0, tzinfo=UTC)),
        ("https://tass.com/world/2149713", None),
    ]


def test_sitemap_index_is_not_a_urlset() -> None:
    with pytest.raises(ExtractionError):
        SitemapPage(TASS.sitemap_index_url(), b"<sitemapindex/>", TASS)
    with pytest.raises(ExtractionError):
        SitemapIndexPage(TASS.sitemap_index_url(), b"<urlset/>", TASS)


# -- hubs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ng_init", "expected"),
    [
        ("sectionId = 4953;", 4953),
        ("sectionId=4953", 4953),
        ("vm.init(); sectionId = '4844'; sectionSlug = 'world';", 4844),
        ("sectionId: 4957", 4957),
        ("pageId = 12", None),
    ],
)
def test_hub_section_id(ng_init: str, expected: int | None) -> None:
    html = (
        '<html><body><main class="container"><div class="section-page" '
        f'ng-init="{ng_init}"></div></main></body></html>'
    )
    assert HubPage("https://tass.com/defense", html, TASS).section_id() == expected


def test_hub_links() -> None:
    html = """<html><body>
    <nav><a href="/politics">P</a><a href="/sport">S</a><a href="/defense">D</a></nav>
    <div class="news-list">
      <div class="news-list__item"><a class="news-preview" href="/defense/2150013">x</a></div>
      <div class="news-list__item">
        <a class="news-preview" href="/defense/2150013?utm_source=x">x</a></div>
      <a ng-href="{{item.link}}" href="{{item.link}}">tpl</a>
      <a class="theme-item" href="/military-operation-in-ukraine/2150011">y</a>
    </div>
    <a class="theme-link" href="/space-programs">Space</a><a href="/tag/nato">NATO</a>
    <a href="/today">About</a><a href="https://example.org/x">ext</a><a href="/rss/v2.xml">RSS</a>
    </body></html>"""
    hub = HubPage("https://tass.com/defense", html, TASS)
    assert hub.section_id() is None
    assert hub.article_links() == [
        "https://tass.com/defense/2150013",
        "https://tass.com/military-operation-in-ukraine/2150011",
    ]
    assert hub.hub_links() == [
        "https://tass.com/politics",
        "https://tass.com/sports",
        "https://tass.com/space-programs",
        "https://tass.com/tag/nato",
    ]


# -- article helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paragraph", "city"),
    [
        ("MOSCOW, October 26. /TASS/. Text.", "MOSCOW"),
        ("ST. PETERSBURG, June 20. /TASS/. Text.", "ST. PETERSBURG"),
        ("IGORA /Leningrad Region/, December 26. /TASS/. Text.", "IGORA /Leningrad Region/"),
        ("NIZHNY NOVGOROD, May 1. /TASS/. Text.", "NIZHNY NOVGOROD"),
        ("Moscow, October 26. /TASS/. Text.", None),
        ("MOSCOW, October 26. Text.", None),
        ("— Mr Ivanov, how did the talks go?", None),
    ],
)
def test_dateline(paragraph: str, city: str | None) -> None:
    assert dateline_of(paragraph) == city


@pytest.mark.parametrize(
    ("text", "caption", "credit"),
    [
        ("A view of Moscow © Ivan Petrov/TASS", "A view of Moscow", "© Ivan Petrov/TASS"),
        ("A view of Moscow© Ivan Petrov/TASS", "A view of Moscow", "© Ivan Petrov/TASS"),
        ("©AP Photo/Alexander Zemlianichenko", None, "© AP Photo/Alexander Zemlianichenko"),
        ("A view of Moscow", "A view of Moscow", None),
        ("", None, None),
    ],
)
def test_split_credit(text: str, caption: str | None, credit: str | None) -> None:
    assert split_credit(text) == (caption, credit)


def test_strip_suffix() -> None:
    def strip_suffix(title: str) -> str:
        return strip_title_suffix(title)[0]

    assert strip_suffix("Putin meets Xi - TASS") == "Putin meets Xi"
    assert strip_suffix("Putin meets Xi — TASS") == "Putin meets Xi"
    assert strip_suffix("TASS chief speaks") == "TASS chief speaks"
    # One rule for the page objects and the clean stage: the dash is spaced on both sides.
    assert strip_title_suffix("Putin meets head of ITAR-TASS") == (
        "Putin meets head of ITAR-TASS",
        False,
    )


def test_clean_text_drops_replacement_characters() -> None:
    assert clean_text("a \ufffd\ufffd  b\u00a0c e\u0301") == "a b c é"


def test_clean_text_drops_control_characters_and_lone_surrogates() -> None:
    # Controls that are not whitespace go (C0, DEL, C1), lone surrogates go; the whitespace
    # controls (tab, line ends, form feed, U+001C-U+001F, NEL) collapse like any space.
    assert clean_text("Pu\x00tin\x01 \x7fmet\x9f \ud800Xi\x1b") == "Putin met Xi"
    assert clean_text("a\tb\x0bc\x1fd\x85e\r\nf") == "a b c d e f"
    # A surrogate pair decoded properly is one character, and stays.
    assert clean_text("smile \U0001f600") == "smile \U0001f600"
    assert strip_controls("one\x00\n\x01\ntwo") == "one\n\ntwo"


def test_clean_text_collapses_every_unicode_whitespace_character() -> None:
    # clean_text splits on str.isspace; the rule it replaced was re's \s: the same set, checked
    # over every code point that is not a control clean_text drops.
    import re
    import sys

    regex = re.compile(r"\s")
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if strip_controls(char) != char:
            continue
        spaced = bool(regex.fullmatch(char))
        assert (clean_text(f"a{char}{char}b") == "a b") == spaced, hex(point)
        assert (clean_text(f"{char}a{char}") == "a") == spaced, hex(point)


def test_decode_html_by_declared_charset_and_meta() -> None:
    html = '<html><head><meta charset="windows-1251"></head><body>Москва</body></html>'
    raw = html.encode("cp1251")
    assert "Москва" in decode_html(raw, "windows-1251")
    assert "Москва" in decode_html(raw)
    plain = html.replace(' charset="windows-1251"', "")
    assert "Москва" in decode_html(plain.encode("utf-8"), None)


def test_extraction_error_fields() -> None:
    error = ExtractionError("missing_field:title", "no headline")
    assert error.reason == "missing_field:title"
    assert error.detail == "no headline"
    assert str(error) == "missing_field:title: no headline"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("", "empty_body"),
        ("<html><body><main><div class='news'><h1>x</h1><div class='text-content'>", "truncated"),
        ("<html><body><p>Hello</p></body></html>", "not_an_article"),
        (
            "<html><body><div class='news'><h1>T</h1><div class='text-content'></div></div>"
            "</body></html>",
            "missing_field:body",
        ),
        (
            "<html><body><div class='news'><div class='text-content'><p>b</p></div></div>"
            "</body></html>",
            "missing_field:title",
        ),
    ],
)
def test_article_errors(html: str, reason: str) -> None:
    with pytest.raises(ExtractionError) as info:
        ArticlePage("https://tass.com/world/1", html, TASS).to_item()
    assert info.value.reason == reason


def test_article_not_at_an_article_url() -> None:
    html = (
        "<html><body><div class='news'><h1>T</h1><div class='text-content'><p>b</p></div></div>"
        "</body></html>"
    )
    with pytest.raises(ExtractionError) as info:
        ArticlePage("https://tass.com/today", html, TASS).to_item()
    assert info.value.reason == "not_an_article"


def test_article_links() -> None:
    html = """<html><head><link rel="canonical" href="https://tass.com/world/1"></head><body>
    <main class="container"><div class="news" id="news"><div class="news-header">
    <span class="tag-label"><a href="/middle-east-tensions">Middle East tensions</a></span>
    <h1 class="news-header__title">T</h1></div>
    <div class="text-content"><div class="text-block"><p>Text with <a href="/world/5">a link</a>
    and <a href="mailto:x@tass.com">mail</a>.</p>
    <div class="read-also"><div class="read-also__title">Read also</div>
    <a class="read-also__link" href="/politics/3?utm_source=x">Other</a></div></div></div>
    <div class="tags__list"><a class="tags__item" href="/tag/iran">Iran</a></div>
    <div class="share"><a href="https://vk.com/share.php?url=x">VK</a></div>
    </div></main></body></html>"""
    page = ArticlePage("https://tass.com/world/1", html, TASS)
    assert page.links() == [
        "https://tass.com/politics/3",
        "https://tass.com/tag/iran",
        "https://tass.com/middle-east-tensions",
        "https://tass.com/world/5",
    ]
    item = page.to_item()
    assert item.mark == "Middle East tensions"
    assert item.body == "Text with a link and mail."
    assert item.related == [{"id": 3, "url": "https://tass.com/politics/3", "title": "Other"}]


def test_head_meta_is_the_first_in_document_order_and_og_url_only_a_property() -> None:
    """The ``<meta>`` tags are read in one pass: the first of ``property`` or ``name`` in
    document order wins, as the per-tag XPath did, and ``og:url`` is taken from a ``property``
    only (a ``name="og:url"`` before it is not it)."""
    html = (
        "<html><head>"
        '<meta name="og:url" content="https://tass.com/world/11">'
        '<meta name="og:title" content="  First  ">'
        '<meta property="og:title" content="Second">'
        '<meta property="description">'
        '<meta property="og:url" content="https://tass.com/world/13">'
        '<meta name="description" content="Lead">'
        "</head><body></body></html>"
    )
    page = ArticlePage("https://tass.com/world/13", html, SiteUrls("https://tass.com"))
    assert page._meta("og:title") == "First"
    assert page._meta("description") == "Lead", "a <meta> without content is passed over"
    assert page._meta_raw("og:url", "property") == "https://tass.com/world/13"
    assert page._meta("missing") is None


@pytest.mark.parametrize(
    "css",
    [
        "#news, .news, .article, .interview, .opinion",  # tested in Python (iselect)
        "[class=lead], .newsy",  # an attribute in the group: one XPath walk for the group
        ".lead, .news-header__lead",
        "div.x, .news",  # a tag in the group: the plain union
        "div .news, .article",  # a combinator in the group: the plain union
        ".news",
        "#news",
        "*.opinion, #news",
        ".news.x, .lead",  # a class of a class: XPath
        "#news.article",
    ],
)
def test_select_finds_what_parsel_finds_in_document_order(css: str) -> None:
    from parsel import Selector

    from crawler.pages.tree import iselect, select

    # Nested and repeated matches, classes among tabs and newlines, an id and a class on one
    # element, a class that only contains a selector's name, a class cut by a no-break space
    # (not a space to XPath), another case, a comment: markup no page object was written for.
    html = """<html><body><div id="news" class="article">
      <p class="lead">a</p><div class="x	news
      other"><span class="news-header__lead opinion">b</span></div><!-- class="news" -->
      <div class="newsy">not it</div><section class="interview"><div class="news">c</div>
      </section><p class="news x">no</p><p class="NEWS Lead">no</p>
      <p class=" lead ">e</p></div><div class="x">d</div></body></html>"""
    selector = Selector(text=html)
    found = select(selector.root, css)
    assert found == [s.root for s in selector.css(css)]
    assert found  # the markup has something for every case
    assert list(iselect(selector.root, css)) == found
    assert next(iselect(selector.root, css)) is found[0]


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff  <!doctype html><html><body><form><input name=a></form><!-- c --><p>x&amp;y",
        "<p>no html element</p>\x00",
        '<?xml version="1.0"?><root><a>1</a></root>',  # XML: parsel decides, as before
        '{"a": 1}',  # JSON: likewise
        "",
    ],
)
def test_html_selector_is_parsels_tree(text: str) -> None:
    from parsel import Selector

    from crawler.pages.tree import html_selector

    ours, parsels = html_selector(text), Selector(text=text)
    assert ours.type == parsels.type
    assert ours.get() == parsels.get()
    if ours.type == "html":
        assert {type(el).__name__ for el in ours.root.iter()} <= {"HtmlElement", "HtmlComment"}


def _raw_text_by_recursion(el: object, block_break: str, top: bool = True) -> str:
    """The definition ``tree._joined`` walks without recursion: an element's text, its
    children's, their tails, block edges as ``block_break``; nothing of comments and skipped
    elements but their tails (and not the top's own tail)."""
    from crawler.pages.tree import SKIP_TAGS, SPACED_TAGS

    tag = getattr(el, "tag", None)
    tail = "" if top else (getattr(el, "tail", None) or "")
    if not isinstance(tag, str) or tag.lower() in SKIP_TAGS:
        return tail
    edge = block_break if tag.lower() in SPACED_TAGS else ""
    inner = "".join(_raw_text_by_recursion(c, block_break, top=False) for c in el)  # type: ignore[attr-defined]
    return f"{edge}{getattr(el, 'text', None) or ''}{inner}{edge}{tail}"


def test_raw_text_of_every_element_is_the_recursive_definition() -> None:
    from crawler.pages.tree import _joined, html_selector

    # Leaves and nests of block and inline elements, a skipped leaf and a skipped nest, a
    # comment and a processing instruction among text, tails everywhere, <br>, empty elements.
    html = """<html><body><div class="a">x<p>one<b>two</b>three</p>tail<br>after<br/>
      <p>leaf</p><span>inline leaf</span>t2<script>var s;</script>t3<!-- c -->t4<?pi z?>t5
      <form><p>in a form</p></form>t6<ul><li>i<em>j</em></li><li></li></ul><p></p>
      <figure><img src="/a.jpg"><figcaption>cap<br>© cred</figcaption></figure>end</div>
      <h2>h</h2></body></html>"""
    root = html_selector(html).root
    checked = 0
    for el in root.iter():
        for block_break in (" ", "\n"):
            assert _joined(el, block_break) == _raw_text_by_recursion(el, block_break)
            checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    ("field", "a", "b", "agree"),
    [
        ("kind", "news", "news", True),
        ("kind", "news", "gallery", True),  # a gallery refines its template
        ("kind", "news", "article", False),
        ("tags", ["Russia", "Oil"], ["oil", "RUSSIA"], True),
        ("tags", ["Russia"], ["Russia", "Oil"], False),
        ("title", "«Putin» – talks", '"putin"  - Talks', True),
        ("title", "Talks in Minsk end…", "Talks in Minsk ended today", True),
        ("title", "Talks in Minsk", "Talks in Kyiv", False),
        ("images", [{"url": "/a/1.jpg"}, {"url": "/b/2.jpg"}], [{"url": "/B/2.JPG"}], True),
        ("images", [{"url": "/a/1.jpg"}], [{"url": "/c/3.jpg"}], False),
        ("related", [{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}], True),
        ("related", [{"id": 1}, {"id": 2}], [{"id": 2}, {"id": 1}], False),
        ("published_at", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), True),
        ("lead", "", None, True),
        ("lead", "text", None, False),
    ],
)
def test_answers_agree_by_each_fields_rule_and_when_equal(
    field: str, a: object, b: object, agree: bool
) -> None:
    from crawler.pages.signals import same

    assert same(field, a, b) is agree
