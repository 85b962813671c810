"""Renderers: HTML pages, RSS, sitemaps, robots.txt and listing-API items, as bytes.

Article pages are assembled from four cached pieces: the ``<head>`` and the article root (both
depend only on the article and its revision) and the page furniture before and after it (which
depends on the day: the "Most read" box lists current stories). Markup follows spec §3; where the
spec says [GUESS] several variants exist and each article picks one (``corpus.Variants``):

- mark: ``div.<root>-header__mark > a.mark`` | ``span.tag-label`` | ``div.marks > div.marks__item``
- photo caption: ``.news-media__caption-text`` + ``.news-media__copyright`` | ``figcaption`` text +
  ``span.copyright`` | ``p.news-media__text`` "caption © credit" after ``div.news-media``
- "Read also": ``div.read-also`` (title div + ``a.read-also__link``) | ``p > strong`` "Read also" +
  ``a`` | ``aside.article-aside`` (``h4`` + ``ul > li > a``)
- ``link rel=canonical``: present on some pages, absent on others
- tag hrefs: ``/tag/<slug>`` | ``/tags/<slug>`` (301 to the former); theme tags ``/<theme>``

``replica.alt.AltRenderer`` subclasses ``Renderer`` for ``--markup alt``: it overrides the
article root, the descriptions, canonical, tag pages, section pages' server batch and RSS items,
and ``content`` (what the ground truth reports). The news sitemaps are cut by
``replica.sitemaps`` under ``--sitemap-layout``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import format_datetime
from html import escape
from typing import Any

from replica.config import SECTIONS, THEMES, ReplicaConfig
from replica.corpus import (
    MSK,
    Article,
    Block,
    Image,
    ReadAlso,
    SiteState,
    Tag,
    iso_msk,
)
from replica.sitemaps import SitemapFile, layout_files, shows_lastmod
from replica.text import MONTHS

UTM = "?utm_source=tass.com&utm_medium=referral&utm_campaign={campaign}&utm_referrer=tass.com"
LOGO = "https://tass.com/img/blocks/common/tass_logo_share_en.png"
TAG_PAGE_SIZE = 50
SECTION_PAGE_SIZE = 20
_TAG_SLUG = re.compile(r"[a-z0-9-]+")


def esc(value: str) -> str:
    return escape(value, quote=True)


def human_time(ts: int) -> str:
    when = datetime.fromtimestamp(ts, MSK)
    return f"{MONTHS[when.month - 1]} {when.day}, {when:%H:%M}"


def ld_json(data: dict[str, Any]) -> str:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/ld+json">{body}</script>'


def date_span(ts: int) -> str:
    return f'<span><dateformat time="{ts}">{human_time(ts)}</dateformat></span>'


_NAV = "".join(
    f'<li class="menu__item"><a class="menu__link" href="/{slug}">{esc(name)}</a></li>'
    for slug, (_id, name) in SECTIONS.items()
)

_SCRIPTS_HEAD = (
    "<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
    "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;"
    "j.src='https://www.googletagmanager.com/gtm.js?id='+i;f.parentNode.insertBefore(j,f);"
    "})(window,document,'script','dataLayer','GTM-TASSEN');</script>"
)
_SCRIPTS_TAIL = (
    "<script>(function(m,e,t,r,i,k,a){m[i]=m[i]||function(){(m[i].a=m[i].a||[]).push(arguments)};"
    "m[i].l=1*new Date();k=e.createElement(t),a=e.getElementsByTagName(t)[0],k.async=1,k.src=r,"
    'a.parentNode.insertBefore(k,a)})(window,document,"script",'
    '"https://mc.yandex.ru/metrika/tag.js","ym");ym(12345678,"init",{clickmap:true});</script>'
    '<noscript><div><img src="https://mc.yandex.ru/watch/12345678" style="position:absolute;'
    'left:-9999px;" alt=""></div></noscript>'
    '<script async src="https://yandex.ru/ads/system/context.js"></script>'
    "<script>window.yaContextCb=window.yaContextCb||[];</script>"
)
_FEED_WIDGET = (
    '<div class="news-feed" ng-controller="NewsFeedCtrl as feed">'
    '<div class="news-feed__filter">'
    '<span class="news-feed__filter-item" ng-repeat="s in feed.sections">'
    "{{s.title}}</span></div>"
    '<div class="news-feed__group" ng-repeat="item in feed.groups">'
    '<div class="news-feed__date">{{item.group_date}}</div>'
    '<div class="news-feed__item" ng-repeat="newsPoint in item.news">'
    '<span class="news-feed__time"><dateformat time="{{newsPoint.date}}"></dateformat></span>'
    '<a class="news-feed__link" ng-href="{{newsPoint.link}}">{{newsPoint.title}}</a>'
    "</div></div></div>"
)


def rendered_read_also(a: Article, blocks: int) -> list[ReadAlso]:
    """The "Read also" blocks a body of ``blocks`` elements shows: none after the last one."""
    return [ra for ra in a.read_also if min(ra.after, blocks - 1) < blocks - 1]


def text_content(
    a: Article,
    blocks: list[Block],
    after: dict[int, list[str]],
    *,
    draw: Callable[[Block], str],
    ad: Callable[[str], str],
) -> str:
    """``div.text-content``: the body cut into ``a.variants.text_blocks`` text-blocks with up to
    ``a.variants.ads_inline`` ads between them (the rest after them), each element drawn by
    ``draw`` and followed by the markup ``after`` holds for its index ("Read also", photos)."""
    n = len(blocks)
    groups = max(1, min(a.variants.text_blocks, n))
    cuts = {round(n * g / groups) for g in range(1, groups)}
    ads = a.variants.ads_inline
    out = ['<div class="text-content"><div class="text-block">']
    for i, block in enumerate(blocks):
        if i in cuts:
            out.append("</div>")
            if ads:
                out.append(ad(f"inline{ads}"))
                ads -= 1
            out.append('<div class="text-block">')
        out.append(draw(block))
        out.extend(after.get(i, ()))
    out.append("</div>")
    if ads:
        out.append(ad("inline-end"))
    out.append("</div>")
    return "".join(out)


BLOCK_SHAPES = {
    "p": "<p>{}</p>",
    "h2": "<h2>{}</h2>",
    "quote": "<blockquote><p>{}</p></blockquote>",
    "q": "<p><strong>{}</strong></p>",
}
"""How each body element kind is drawn (``corpus.Block``); other markups replace some."""


def draw_block(block: Block, shapes: dict[str, str] = BLOCK_SHAPES) -> str:
    kind, value = block
    return shapes[kind].format(esc(value))


def _ad(slot: str) -> str:
    return (
        f'<div class="ad ad_{slot}"><div class="ad__label">Реклама</div>'
        f'<div class="ad__slot" id="adfox_{slot}"></div></div>'
    )


@dataclass(frozen=True, slots=True)
class ArticleContent:
    """What an article page shows under one markup: the parts the ground truth reports."""

    blocks: list[Block]
    """Body elements in page order (empty for a gallery without an intro)."""
    images: tuple[Image, ...]
    """Every photo of the article in page order (lead photo or slides, then photos in the text)."""
    dateline: str | None
    related: list[ReadAlso]
    """"Read also" blocks as rendered (a block after the last paragraph is dropped)."""


class Renderer:
    """Renders every page of one ``SiteState`` in the default markup; article pieces are shared
    across days. ``replica.alt.AltRenderer`` overrides the [GUESS] parts."""

    tag_listing = "/tag/"
    """Where tag listing pages live; ``tag_alias`` answers 301 to it."""
    tag_alias = "/tags/"
    server_batch = SECTION_PAGE_SIZE
    """Items of a section or theme page rendered in the server HTML (the rest come from the API)."""

    def __init__(
        self,
        state: SiteState,
        config: ReplicaConfig,
        base_url: str,
        hostile_links: list[tuple[str, str]],
        part_cache: dict[tuple[int, int], tuple[bytes, bytes]],
    ) -> None:
        self.state = state
        self.config = config
        self.seed = state.archive.seed
        self.base = base_url.rstrip("/")
        self.crawl_delay = config.crawl_delay
        self.hostile_links = hostile_links
        self._parts = part_cache
        self._api: dict[int, str] = {}
        self._pages: dict[str, bytes] = {}
        self._content: dict[int, ArticleContent] = {}
        self._sitemaps: dict[str, SitemapFile] | None = None
        self._top, self._bottom = self._furniture()

    # -- helpers --------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base + path

    def _document(self, title: str, body: str, head_extra: str = "") -> bytes:
        return (
            '<!DOCTYPE html><html lang="en" data-ng-app="tassApp"><head><meta charset="utf-8">'
            f"<title>{esc(title)} - TASS</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="alternate" type="application/rss+xml" href="/rss/v2.xml">{head_extra}'
            f'{_SCRIPTS_HEAD}</head><body>{self._top}<main class="container">{body}'
            f"{self._bottom}</body></html>"
        ).encode()

    def _furniture(self) -> tuple[str, str]:
        state = self.state
        top = (
            '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-TASSEN" '
            'height="0" width="0" style="display:none"></iframe></noscript>'
            '<header class="header"><a class="header__logo" href="/">TASS</a>'
            f'<nav class="menu"><ul class="menu__list">{_NAV}</ul></nav>'
            '<a class="header__search" href="/search">Search</a></header>'
            f"{_FEED_WIDGET}"
        )
        most_read = "".join(self._most_read_item(state.articles[i]) for i in state.listed[3:9])
        bottom = (
            '<aside class="sidebar">'
            '<div class="most-read"><div class="most-read__title">Most read</div>'
            '<div class="most-read__tabs"><span>Now</span><span>Today</span><span>This week</span>'
            f'</div><ul class="most-read__list">{most_read}</ul></div>'
            '<div class="infographics"><div class="infographics__title">Infographics</div>'
            '<a class="infographics__item" href="https://tass.com/infographics/8899">'
            "Russia's grain harvest in figures</a></div>"
            f"{_ad('sidebar')}"
            '<div class="partner-news"><div class="partner-news__title">Partner News</div>'
            '<a class="partner-news__item" href="https://partner.example/story/1" rel="nofollow">'
            "Ten places to see in autumn</a></div></aside></main>"
            '<footer class="footer"><a href="/today">About TASS</a> '
            '<a href="/rss/v2.xml">RSS</a> <span>© TASS 2026</span></footer>'
            f"{_SCRIPTS_TAIL}"
        )
        return top, bottom

    def _most_read_item(self, a: Article) -> str:
        return (
            f'<li class="most-read__item"><a class="most-read__link" href="{a.path}">'
            f"{esc(self.state.titles[a.index])}</a></li>"
        )

    # -- articles -------------------------------------------------------------------------
    def content(self, index: int) -> ArticleContent:
        """The article's body, photos, dateline and "Read also" blocks as this markup shows them."""
        found = self._content.get(index)
        if found is None:
            found = self._make_content(index)
            self._content[index] = found
        return found

    def _make_content(self, index: int) -> ArticleContent:
        a = self.state.articles[index]
        blocks = self.state.body(index)
        return ArticleContent(blocks, a.images, a.dateline, rendered_read_also(a, len(blocks)))

    def description(self, index: int) -> str:
        """``og:description`` and the other descriptions of the head: the lead (spec §3.2)."""
        return self.state.articles[index].lead or ""

    def canonical(self, a: Article) -> str:
        """The ``link rel=canonical`` element, or nothing."""
        if not a.variants.canonical:
            return ""
        return f'<link rel="canonical" href="{esc(self.url(a.path))}">'

    def article_page(self, index: int) -> bytes:
        head, main = self.article_parts(index)
        return b"".join((head, self._top_b, main, self._bottom_b))

    @property
    def _top_b(self) -> bytes:
        cached = self._pages.get("\x00top")
        if cached is None:
            cached = (self._top + '<main class="container">').encode()
            self._pages["\x00top"] = cached
        return cached

    @property
    def _bottom_b(self) -> bytes:
        cached = self._pages.get("\x00bottom")
        if cached is None:
            cached = (self._bottom + "</body></html>").encode()
            self._pages["\x00bottom"] = cached
        return cached

    def article_parts(self, index: int) -> tuple[bytes, bytes]:
        key = (index, self.state.revision[index])
        parts = self._parts.get(key)
        if parts is None:
            parts = (self._article_head(index).encode(), self._article_main(index).encode())
            self._parts[key] = parts
        return parts

    def _article_head(self, index: int) -> str:
        state = self.state
        a = state.articles[index]
        title = state.titles[index]
        url = self.url(a.path)
        lead = self.description(index)
        images = self.content(index).images
        image = images[0].url if images else LOGO
        canonical = self.canonical(a)
        section_name = SECTIONS[a.home][1]
        org = {
            "@context": "https://schema.org",
            "@type": "Organization",
            "name": "TASS",
            "url": "https://tass.com",
            "logo": LOGO,
        }
        crumbs = {
            "@context": "https://schema.org",
            "@type": "BreadcrumbList",
            "itemListElement": [
                {"@type": "ListItem", "position": 1, "name": "TASS", "item": self.url("/")},
                {
                    "@type": "ListItem",
                    "position": 2,
                    "name": section_name,
                    "item": self.url(f"/{a.home}"),
                },
            ],
        }
        article_ld = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "mainEntityOfPage": url,
            "headline": title,
            "description": lead,
            "datePublished": iso_msk(a.published),
            "dateModified": iso_msk(state.modified[index]),
            "image": [img.url for img in images] or [LOGO],
            "author": {"@type": "Organization", "name": "TASS"},
            "publisher": {"@type": "Organization", "name": "TASS", "logo": LOGO},
        }
        return (
            '<!DOCTYPE html><html lang="en" data-ng-app="tassApp"><head><meta charset="utf-8">'
            f"<title>{esc(title)} - TASS</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="description" content="{esc(lead)}">'
            '<meta property="og:type" content="article">'
            '<meta property="og:site_name" content="TASS">'
            f'<meta property="og:title" content="{esc(title)} - TASS">'
            f'<meta property="og:description" content="{esc(lead)}">'
            f'<meta property="og:image" content="{esc(image)}">'
            f'<meta property="og:url" content="{esc(url)}">'
            '<meta name="twitter:card" content="summary_large_image">'
            '<meta name="twitter:site" content="@tassagency_en">'
            f'<meta name="twitter:title" content="{esc(title)} - TASS">'
            f'<meta name="twitter:description" content="{esc(lead)}">'
            f'<meta name="twitter:image" content="{esc(image)}">{canonical}'
            '<link rel="alternate" type="application/rss+xml" href="/rss/v2.xml">'
            f"{_SCRIPTS_HEAD}{ld_json(org)}{ld_json(crumbs)}{ld_json(article_ld)}</head><body>"
        )

    def _article_main(self, index: int) -> str:
        state = self.state
        a = state.articles[index]
        title = esc(state.titles[index])
        kind = a.kind
        root = "news" if kind in ("news", "gallery") else kind
        mark = self._mark(a, root)
        published = date_span(a.published)
        if state.revision[index] > 1:
            published += (
                f'<span class="{root}-header__updated">Updated: '
                f'<dateformat time="{state.modified[index]}">'
                f"{human_time(state.modified[index])}</dateformat></span>"
            )
        lead = esc(a.lead or "")
        byline = ""
        if a.byline is not None:
            name, position = (esc(v) for v in a.byline)
            if kind == "interview":
                byline = (
                    f'<div class="interview-header__author">Interviewed by '
                    f'<span class="interview-header__author-name">{name}</span></div>'
                )
            else:
                byline = (
                    '<div class="opinion-header__author">'
                    f'<span class="opinion-header__author-name">{name}</span>'
                    f'<span class="opinion-header__author-position">{position}</span></div>'
                )
        if root == "news":
            lead_html = f'<div class="news-header__lead">{lead}</div>'
            header = (
                f'<div class="news-header">{mark}<h1 class="news-header__title">{title}</h1>'
                f'<div class="news-header__date">{published}</div>{lead_html}</div>'
            )
        elif root == "article":
            header = (
                f'<div class="article__header">{mark}<div class="article__title-wrap">'
                f'<h1 class="article__title">{title}</h1></div>'
                f'<div class="article__date">{published}</div>'
                f'<div class="article-lead">{lead}</div></div>'
            )
        elif root == "interview":
            header = (
                f'<div class="interview-header">{mark}<div class="interview-header__title-wrapper">'
                f'<h1 class="interview-header__title">{title}</h1></div>{byline}'
                f'<div class="interview-header__date">{published}</div></div>'
            )
        else:
            header = (
                f'<div class="opinion-header">{mark}<div class="opinion-header__title-wrapper">'
                f'<h1 class="opinion-header__title">{title}</h1></div>{byline}'
                f'<div class="opinion-header__date">{published}</div>'
                f'<div class="opinion-header__lead">{lead}</div></div>'
            )
        media = ""
        if kind == "gallery":
            slides = "".join(
                f'<div class="gallery-slider__item" data-index="{n}">'
                f"{self._media(img, a.variants.caption)}</div>"
                for n, img in enumerate(a.images)
            )
            media = (
                f'<div class="gallery-slider" data-slides="{len(a.images)}">'
                f'<div class="gallery-slider__list">{slides}</div>'
                '<button class="gallery-slider__prev">&lt;</button>'
                '<button class="gallery-slider__next">&gt;</button></div>'
            )
        elif a.images:
            media = self._media(a.images[0], a.variants.caption)
        body = self._text_content(a, state.body(index))
        tags = ""
        if a.tags:
            items = "".join(
                f'<a class="tags__item" href="{esc(self._tag_href(a, t))}">{esc(t.text)}</a>'
                for t in a.tags
            )
            tags = f'<div class="tags"><div class="tags__list">{items}</div></div>'
        share_url = esc(self.url(a.path))
        share = (
            '<div class="share"><span class="share__title">Share</span>'
            f'<a class="share__item share__item_vk" href="https://vk.com/share.php?url={share_url}">VK</a>'
            f'<a class="share__item share__item_tg" href="https://t.me/share/url?url={share_url}">Telegram</a>'
            f'<a class="share__item share__item_x" href="https://x.com/intent/tweet?url={share_url}">X</a></div>'
        )
        root_id = ' id="news"' if root == "news" else ""
        return f'<div class="{root}"{root_id}>{header}{media}{body}{tags}{share}</div>'

    def _tag_href(self, a: Article, tag: Tag) -> str:
        if tag.theme or a.variants.tag_href == 0:
            return tag.path
        return f"/tags/{tag.slug}"

    @staticmethod
    def _mark(a: Article, root: str) -> str:
        if a.mark is None:
            return ""
        text = esc(a.mark)
        variant = a.variants.mark
        if variant == 0:
            inner = (
                f'<a class="mark" href="/{a.theme}">{text}</a>'
                if a.theme and a.mark == THEMES[a.theme][1]
                else f'<span class="mark">{text}</span>'
            )
            return f'<div class="{root}-header__mark">{inner}</div>'
        if variant == 1:
            return f'<span class="tag-label">{text}</span>'
        return f'<div class="marks"><div class="marks__item">{text}</div></div>'

    @staticmethod
    def _media(img: Image, variant: int) -> str:
        src, caption, credit = esc(img.url), esc(img.caption), esc(img.credit)
        if variant == 0:
            return (
                '<div class="news-media">'
                f'<img class="news-media__image" src="{src}" alt="{caption}">'
                '<div class="news-media__caption">'
                f'<span class="news-media__caption-text">{caption}</span>'
                f'<span class="news-media__copyright">{credit}</span></div></div>'
            )
        if variant == 1:
            return (
                f'<div class="news-media"><figure><img src="{src}" alt="">'
                f'<figcaption>{caption} <span class="copyright">{credit}</span></figcaption>'
                "</figure></div>"
            )
        return (
            f'<div class="news-media"><img src="{src}" alt="{caption}"></div>'
            f'<p class="news-media__text">{caption} {credit}</p>'
        )

    def _read_also(self, block: ReadAlso) -> str:
        state = self.state
        links = []
        for i in block.targets:
            t = state.articles[i]
            href = t.path + (UTM.format(campaign="readalso") if block.utm else "")
            if block.variant == 2 and not block.utm:
                href = self.url(t.path)
            links.append((esc(href), esc(t.title0)))
        if block.variant == 0:
            inner = "".join(f'<a class="read-also__link" href="{h}">{t}</a>' for h, t in links)
            return (
                f'<div class="read-also"><div class="read-also__title">Read also</div>{inner}</div>'
            )
        if block.variant == 1:
            inner = "<br>".join(f'<a href="{h}">{t}</a>' for h, t in links)
            return f"<p><strong>Read also</strong><br>{inner}</p>"
        inner = "".join(f'<li><a href="{h}">{t}</a></li>' for h, t in links)
        return (
            '<aside class="article-aside"><h4 class="article-aside__title">Read also</h4>'
            f"<ul>{inner}</ul></aside>"
        )

    def _text_content(self, a: Article, blocks: list[Block]) -> str:
        after: dict[int, list[str]] = {}
        for ra in self.content(a.index).related:
            after.setdefault(ra.after, []).append(self._read_also(ra))
        return text_content(a, blocks, after, draw=draw_block, ad=_ad)

    # -- listing API ----------------------------------------------------------------------
    def api_item(self, a: Article) -> str:
        cached = self._api.get(a.index)
        if cached is None:
            item = {
                "id": a.id,
                "isFlash": int(a.flash),
                "isOnline": 0,
                "type": "default",
                "mark": a.mark or "",
                "date": a.published,
                "title": self.state.titles[a.index],
                "subtitle": "",
                "lead": a.lead or "",
                "image": a.api_image,
                "link": a.path,
                "sponsor_id": None,
                "sponsor_type_id": None,
            }
            cached = json.dumps(item, ensure_ascii=False)
            self._api[a.index] = cached
        return cached

    # -- listing pages --------------------------------------------------------------------
    def _preview(self, a: Article, utm: str | None = None) -> str:
        href = a.path + (UTM.format(campaign=utm) if utm else "")
        return (
            '<div class="news-list__item">'
            f'<a class="news-preview news-preview_default" href="{esc(href)}">'
            f'<span class="news-preview__title">{esc(self.state.titles[a.index])}</span>'
            f'<span class="news-preview__date">{date_span(a.published)}</span></a></div>'
        )

    def _cached(self, key: str, build: Any) -> bytes:
        page = self._pages.get(key)
        if page is None:
            page = build()
            self._pages[key] = page
        assert isinstance(page, bytes)
        return page

    def home(self) -> bytes:
        return self._cached("home", self._home)

    def _home(self) -> bytes:
        state = self.state
        top = "".join(
            self._preview(state.articles[i], "home" if n % 7 == 3 else None)
            for n, i in enumerate(state.listed[:30])
        )
        blocks = []
        for slug, (sid, name) in SECTIONS.items():
            items = "".join(self._preview(state.articles[i]) for i in state.feeds.get(sid, [])[:5])
            blocks.append(
                f'<section class="home-section"><h2><a href="/{slug}">{esc(name)}</a></h2>'
                f'<div class="news-list">{items}</div></section>'
            )
        themes = "".join(
            f'<a class="theme-link" href="/{slug}">{esc(name)}</a> '
            for slug, (_id, name, _h) in THEMES.items()
        )
        today = datetime.fromtimestamp(state.now, MSK)
        special = "".join(
            f'<li><a href="{esc(href)}">{esc(label)}</a></li>' for href, label in self.hostile_links
        )
        special_html = (
            '<section class="special-projects"><h2>Special projects</h2>'
            f"<ul>{special}</ul></section>"
            if special
            else ""
        )
        body = (
            '<div class="home-page"><h1 class="visually-hidden">TASS</h1>'
            '<section class="top-stories"><h2>Top stories</h2>'
            f'<div class="news-list">{top}</div></section>'
            f'{"".join(blocks)}<section class="themes"><h2>Themes</h2>{themes}</section>'
            f"{special_html}"
            f'<p class="home-page__links"><a href="/today">About TASS</a> '
            f'<a href="/rss/v2.xml">RSS</a></p>'
            f'<div class="visually-hidden">{_ad("home")}</div>'
            f'<span class="home-page__date">{today:%d.%m.%Y}</span></div>'
        )
        return self._document("Russian News Agency TASS", body)

    def section(self, slug: str) -> bytes:
        return self._cached("section:" + slug, lambda: self._listing_page(slug))

    def _listing_page(self, slug: str) -> bytes:
        state = self.state
        if slug in SECTIONS:
            sid, name = SECTIONS[slug]
            items = "".join(
                self._preview(state.articles[i])
                for i in state.feeds.get(sid, [])[: self.server_batch]
            )
            body = (
                f'<div class="section-page" ng-init="sectionId = {sid}; sectionSlug = \'{slug}\';">'
                f'<h1 class="section-page__title">{esc(name)}</h1><div class="news-list">{items}'
                '<div class="news-list__item" ng-repeat="item in newsList">'
                '<a class="news-preview news-preview_default" ng-href="{{item.link}}">'
                '<span class="news-preview__title">{{item.title}}</span></a></div></div>'
                '<button class="news-list__more" ng-click="loadMore()">More news</button></div>'
            )
        else:
            sid, name, _homes = THEMES[slug]
            items = "".join(
                f'<a class="theme-item" href="{esc(state.articles[i].path)}">'
                f'<span class="theme-item__title">{esc(state.titles[i])}</span>'
                '<span class="theme-item__date">'
                f"{date_span(state.articles[i].published)}</span></a>"
                for i in state.feeds.get(sid, [])[: self.server_batch]
            )
            body = (
                '<div class="section-page theme-page" '
                f"ng-init=\"sectionId = {sid}; themeSlug = '{slug}';\">"
                f'<h1 class="theme-page__title">{esc(name)}</h1><div class="theme-list">{items}'
                '<a class="theme-item" ng-repeat="item in newsList" ng-href="{{item.link}}">'
                '<span class="theme-item__title">{{item.title}}</span></a></div></div>'
            )
        return self._document(name, body)

    def tag(self, slug: str, page: int) -> bytes | None:
        items = self.state.tag_pages.get(slug)
        if items is None:
            return None
        pages = max(1, -(-len(items) // TAG_PAGE_SIZE))
        if not 1 <= page <= pages:
            return None
        return self._cached(f"tag:{slug}:{page}", lambda: self._tag(slug, page, items, pages))

    def tag_route(self, path: str) -> tuple[str, str] | None:
        """(``listing`` or ``alias``, slug) for a tag path, else None."""
        for role, prefix in (("listing", self.tag_listing), ("alias", self.tag_alias)):
            slug = path.removeprefix(prefix)
            if slug != path and _TAG_SLUG.fullmatch(slug):
                return role, slug
        return None

    def _tag(self, slug: str, page: int, items: list[int], pages: int) -> bytes:
        name = self.state.tag_names[slug]
        chunk = items[(page - 1) * TAG_PAGE_SIZE : page * TAG_PAGE_SIZE]
        rows = "".join(self._preview(self.state.articles[i]) for i in chunk)
        nav = ""
        if page > 1:
            prev = f"/tag/{slug}" if page == 2 else f"/tag/{slug}?page={page - 1}"
            nav += f'<a class="pagination__prev" href="{prev}">Previous</a>'
        if page < pages:
            nav += f'<a class="pagination__next" href="/tag/{slug}?page={page + 1}">Next</a>'
        body = (
            f'<div class="tag-page"><h1 class="tag-page__title">{esc(name)}</h1>'
            f'<div class="news-list">{rows}</div><div class="pagination">{nav}</div></div>'
        )
        return self._document(name, body)

    def today(self) -> bytes:
        body = (
            '<div class="static-page"><h1>About TASS</h1><p>TASS is Russia\'s state news agency, '
            "founded in 1904. This is an offline replica of its English service, generated for "
            "tests and benchmarks; none of its stories are real.</p></div>"
        )
        return self._cached("today", lambda: self._document("About TASS", body))

    def not_found(self) -> bytes:
        body = '<div class="error-page"><h1>Page not found</h1><p><a href="/">Home</a></p></div>'
        return self._cached("404", lambda: self._document("Page not found", body))

    def archive_day(self, when: date, items: list[int], prev: str, nxt: str) -> bytes:
        year, month, day = when.year, when.month, when.day
        rows = "".join(self._preview(self.state.articles[i]) for i in items)
        body = (
            f'<div class="archive-page"><h1>News archive: {year:04d}-{month:02d}-{day:02d}</h1>'
            f'<div class="news-list">{rows or "<p>No news for this day.</p>"}</div>'
            f'<div class="pagination"><a class="pagination__prev" href="{prev}">Previous day</a>'
            f'<a class="pagination__next" href="{nxt}">Next day</a></div></div>'
        )
        return self._document("News archive", body)

    # -- feeds ----------------------------------------------------------------------------
    def rss(self) -> bytes:
        return self._cached("rss", self._rss)

    def _rss(self) -> bytes:
        state = self.state
        items = []
        for i in state.rss:
            items.append(self._rss_item(state.articles[i]))
        build = format_datetime(datetime.fromtimestamp(state.now, MSK))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>TASS</title><link>{esc(self.url('/'))}</link>"
            "<description>TASS: Russian News Agency</description><language>en</language>"
            f"<lastBuildDate>{build}</lastBuildDate>{''.join(items)}</channel></rss>\n"
        ).encode()

    def _rss_item(self, a: Article) -> str:
        pub = format_datetime(datetime.fromtimestamp(a.published, MSK))
        return (
            f"<item><title>{esc(self.state.titles[a.index])}</title>"
            f"<link>{esc(self.url(a.path))}</link>"
            f"<pubDate>{pub}</pubDate><description>{esc(a.lead or '')}</description>"
            f"<category>{esc(SECTIONS[a.home][1])}</category></item>"
        )

    @property
    def sitemap_files(self) -> dict[str, SitemapFile]:
        """The news sitemaps under the configured layout, by file name, in index order."""
        if self._sitemaps is None:
            files = layout_files(self.state, self.config)
            self._sitemaps = {f.name: f for f in files}
        return self._sitemaps

    def sitemap_index(self) -> bytes:
        def build() -> bytes:
            parts = []
            for name, sitemap in self.sitemap_files.items():
                modified = self.state.modified
                last = max((modified[i] for i in sitemap.entries), default=self.state.now)
                parts.append(
                    f"<sitemap><loc>{esc(self.url(f'/sitemap/{name}'))}</loc>"
                    f"<lastmod>{iso_msk(last)}</lastmod></sitemap>"
                )
            return (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{''.join(parts)}</sitemapindex>\n"
            ).encode()

        return self._cached("sitemap", build)

    def sitemap(self, name: str) -> bytes | None:
        """The news sitemap called ``name``, or None when the layout has no such file."""
        sitemap = self.sitemap_files.get(name)
        if sitemap is None:
            return None

        def build() -> bytes:
            state = self.state
            share_without = self.config.sitemap_no_lastmod
            urls = []
            for i in sitemap.entries:
                a = state.articles[i]
                lastmod = ""
                if shows_lastmod(self.seed, a.id, share_without):
                    lastmod = f"<lastmod>{iso_msk(state.modified[i])}</lastmod>"
                urls.append(f"<url><loc>{esc(self.url(a.path))}</loc>{lastmod}</url>")
            return (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{''.join(urls)}</urlset>\n"
            ).encode()

        return self._cached(f"sitemap:{name}", build)

    def robots(self) -> bytes:
        delay = ""
        if self.crawl_delay is not None:
            delay = f"Crawl-delay: {self.crawl_delay:g}\n"
        return (
            "User-agent: *\nDisallow: /search\nDisallow: /preview/\n"
            f"{delay}\nSitemap: {self.url('/sitemap.xml')}\n"
        ).encode()
