"""The article page: one tass.com article response → one ``ArticleItem`` and its links.

A pure function of (url, html) and, when a feed named the article, of what the feed said
(``crawler.pages.hints``): no requests, no settings, no clock. Every field is answered by one or
more signals, ranked and cross-checked by ``crawler.pages.signals`` (whose table lists them in
order); this module reads the page's own:

- page check: an empty body → ``empty_body``; no closing ``</html>`` → ``truncated`` (the
  server always sends a complete document, and a body cut off in transit loses its end
  first; JSON-LD sits in the head, so its presence proves nothing about the body). No
  article root (``.news``, ``#news``, ``.article``, ``.interview``, ``.opinion`` holding an
  ``h1`` or ``div.text-content``) → ``not_an_article``.
- url: ``link[rel=canonical]``, ``og:url``, JSON-LD ``mainEntityOfPage``, when they name the
  requested article id (they give the primary path); else the requested URL. Section is the
  canonical path's first segment.
- kind: a gallery when JSON-LD calls the page an ``ImageGallery``, when the root holds a
  container of photo slides (``crawler.pages.photos``), or when a slider-classed container
  (``gallery``, ``slider``, ``swiper``, ``carousel``) holds photos; else the root template.
- title: JSON-LD ``headline``; ``og:title`` minus `` - TASS``; the root's ``h1``; ``<title>``.
- published_at: JSON-LD ``datePublished``; ``article:published_time``; the first
  ``dateformat[time]`` under the root (unix seconds). modified_at: JSON-LD ``dateModified``;
  ``article:modified_time``. Aware, UTC.
- lead: the template's lead element (present but empty: the article has none); JSON-LD
  ``description`` and ``og:description``/``description``/``twitter:description`` when they are
  not the body's opening (``structure.is_body_opening``).
- body: ``p``, ``h2``–``h4`` and ``blockquote`` of ``div.text-content`` in order (else of the
  root's largest run of paragraphs, ``structure.body_container``), skipping "Read also"
  blocks (any element whose text is "Read also" plus only link texts, or a bare "Read also"
  label and the link-only elements after it), ads (``Реклама``), photos with their captions and
  credits, share buttons, Angular templates (``{{…}}``) and scripts. A gallery needs none.
- dateline: the city that starts the first paragraph (``MOSCOW, October 26. /TASS/.``).
- tags: ``div.tags__list a.tags__item`` (→ ``.tags__list a`` → ``a.tags__item``); the links to
  tag and theme pages after the headline (``structure.tags_by_structure``).
- mark: the label between the header's top and the headline (``structure.mark_by_structure``);
  an element before the headline classed ``mark``/``label``.
- images: the article's own photos, with caption and credit (``crawler.pages.photos``); the
  JSON-LD ``image`` list and ``og:image`` (never the site's logo) when the page shows none.
- related: the links of the "Read also" blocks, canonical, in page order, one per id; a label
  inside a link (a "Read also" card) is not part of the title.

Every tree walk is iterative (``crawler.pages.tree``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from lxml.html import HtmlElement
from parsel import Selector

from crawler.items import ArticleItem, ArticleKind, Image, Related
from crawler.pages import structure
from crawler.pages.errors import ExtractionError
from crawler.pages.hints import FeedHints
from crawler.pages.photos import (
    AD_LABEL,
    FURNITURE_CLASS_RE,
    Photo,
    PhotoScan,
    absolute,
    scan_photos,
    split_credit,
)
from crawler.pages.signals import Answer, Resolved, counts, provenance, resolve
from crawler.pages.tree import (
    SKIP_TAGS,
    anchors,
    classes,
    elements,
    html_selector,
    is_element,
    iselect,
    select,
    tag_of,
    visible_text,
    xpath,
)
from crawler.text import clean_text, decode_html, from_unix, parse_iso, strip_title_suffix
from crawler.urls import SiteUrls

__all__ = ["ArticlePage", "Extraction", "dateline_of", "element_text", "split_credit"]

DATELINE_RE = re.compile(
    r"^(?P<city>[A-Z][A-Z .'\-]*(?: /[^/]+/)?), [A-Z][a-z]+ \d{1,2}\. /TASS/\."
)
READ_ALSO_RE = re.compile(r"^\W*read\s+also[\s:.\-–—]*", re.IGNORECASE)
_HTML_END_RE = re.compile(r"</html\s*>", re.IGNORECASE)
_TEMPLATE_RE = re.compile(r"\{\{.*?\}\}")

ROOT_SELECTOR = "#news, .news, .article, .interview, .opinion"
TEMPLATES: tuple[ArticleKind, ...] = ("news", "article", "interview", "opinion")
LEAD_SELECTOR = ".news-header__lead, .article-lead, .opinion-header__lead, .interview-header__lead"
BLOCK_TAGS = frozenset({"p", "h2", "h3", "h4", "blockquote"})
FURNITURE_TAGS = frozenset({"figure", "figcaption", "aside", "nav", "img", "picture", "video"})
_MEDIA_CLASS_RE = re.compile(
    r"(?:^|[\s_-])(?:caption\w*|copyright|credit\w*|news-media\w*|photo\w*|gallery\w*|"
    r"slider\w*|related\w*|most-read\w*)(?:$|[\s_-])",
    re.IGNORECASE,
)
_SLIDER_CLASS_RE = re.compile(r"gallery|slider|swiper|carousel|slideshow", re.IGNORECASE)
_GALLERY_TYPES = frozenset({"ImageGallery", "MediaGallery"})

element_text = visible_text
"""The visible text of an element (``crawler.pages.tree.visible_text``)."""


def _is_junk(text: str) -> bool:
    return not text or text.startswith(AD_LABEL) or bool(_TEMPLATE_RE.search(text))


def _link_only(el: HtmlElement, text: str) -> bool:
    """Whether the text of ``el`` is nothing but its links' texts (and punctuation)."""
    found = anchors(el)
    if not found:
        return False
    linked = sum(len(re.sub(r"\W", "", visible_text(a))) for a in found)
    return len(re.sub(r"\W", "", text)) - linked <= 2


def _is_read_also(el: HtmlElement, text: str) -> bool:
    """A "Read also" block: the label, then only linked headlines."""
    match = READ_ALSO_RE.match(text)
    if match is None:
        return False
    return _link_only(el, text[match.end() :])


def _is_read_also_label(el: HtmlElement, text: str) -> bool:
    match = READ_ALSO_RE.match(text)
    return match is not None and match.end() == len(text) and not anchors(el)


def _is_furniture(el: HtmlElement, text: str) -> bool:
    tag = tag_of(el)
    if tag in SKIP_TAGS or tag in FURNITURE_TAGS:
        return True
    if FURNITURE_CLASS_RE.search(classes(el)) or _MEDIA_CLASS_RE.search(classes(el)):
        return True
    return tag not in BLOCK_TAGS and text.startswith(AD_LABEL)


def _ld_objects(sel: Selector) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object of the page (top level, lists and ``@graph`` flattened)."""
    for raw in sel.xpath('//script[@type="application/ld+json"]/text()').getall():
        try:
            data = json.loads(raw.strip())
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        for obj in stack:
            if not isinstance(obj, dict):
                continue
            graph = obj.get("@graph")
            if isinstance(graph, list):
                yield from (g for g in graph if isinstance(g, dict))
            else:
                yield obj


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    return {str(k) for k in (kind if isinstance(kind, list) else [kind]) if k}


def _urls_of(value: Any) -> list[str]:
    """Image URLs of a JSON-LD value: a string, an ``ImageObject``, or a list of them."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        found = item.get("url") or item.get("contentUrl") if isinstance(item, dict) else item
        if isinstance(found, str) and found.strip():
            out.append(found.strip())
    return out


def dateline_of(paragraph: str) -> str | None:
    """The city printed at the start of a first paragraph, or None."""
    match = DATELINE_RE.match(paragraph)
    return match.group("city") if match else None


def _dateline_end(paragraph: str) -> int:
    match = DATELINE_RE.match(paragraph)
    return match.end() if match else 0


@dataclass(frozen=True, slots=True)
class Extraction:
    """An article item with the signals behind each of its fields."""

    item: ArticleItem
    fields: dict[str, Resolved]
    feeds: tuple[str, ...] = ()
    """The feeds whose hints it had (``api``, ``rss``)."""

    def counts(self) -> dict[str, int]:
        """The run's extraction counters for this article (``signals.counts``)."""
        return counts(self.fields, self.feeds)


@dataclass(frozen=True, slots=True)
class _Body:
    paragraphs: list[str]
    related: list[Related]


class ArticlePage:
    """One article page. ``extract()`` gives the item and its signals; ``links()`` lists URLs
    to follow."""

    def __init__(
        self, url: str, html: str | bytes, urls: SiteUrls, encoding: str | None = None
    ) -> None:
        self.url = url
        self.urls = urls
        self.text = decode_html(html, encoding)
        self.sel = html_selector(self.text)
        self._root: HtmlElement | None = None
        self._template: ArticleKind | None = None
        self._found = False
        self._ld: dict[str, Any] | bool | None = False
        self._photos: PhotoScan | None = None
        self._bodies: dict[str, _Body | None] = {}
        self._lds: list[dict[str, Any]] | None = None
        self._metas: dict[tuple[str, str], tuple[int, str]] | None = None
        self._heads: tuple[list[str], list[str]] | None = None
        self._content: HtmlElement | bool | None = False
        self._headline: HtmlElement | bool | None = False

    # -- structure ------------------------------------------------------------------------
    def is_truncated(self) -> bool:
        """Whether the document was cut off: it has no closing ``</html>``."""
        end = len(self.text)
        if _HTML_END_RE.search(self.text, max(0, end - 1024)) is not None:
            return False  # the usual place: a scan of the last kilobyte finds it
        return _HTML_END_RE.search(self.text, max(0, end - 65536)) is None

    def _find_root(self) -> tuple[HtmlElement, ArticleKind] | None:
        if self._found:
            if self._root is None or self._template is None:
                return None
            return self._root, self._template
        self._found = True
        document = self.sel.root
        for scopes in (select(document, "main"), select(document, "body")):
            for el in (c for scope in scopes for c in iselect(scope, ROOT_SELECTOR)):
                if not (xpath(el, ".//h1") or next(iselect(el, ".text-content"), None) is not None):
                    continue
                template = self._template_of(el)
                if template is None:
                    continue
                self._root, self._template = el, template
                return el, template
        return None

    @staticmethod
    def _template_of(el: HtmlElement) -> ArticleKind | None:
        names = classes(el).split()
        for kind in TEMPLATES:
            if kind in names:
                return kind
        if el.get("id") == "news":
            return "news"
        return None

    def root(self) -> HtmlElement:
        """The article root element; raises ``ExtractionError`` when the page has none. The
        page's checks run until a root is found (a page object asks for it ~10 times)."""
        if self._root is not None:
            return self._root
        if not self.text.strip():
            raise ExtractionError("empty_body", "the response body is empty")
        if self.is_truncated():
            raise ExtractionError("truncated", f"no closing </html> in {len(self.text)} chars")
        found = self._find_root()
        if found is None:
            raise ExtractionError("not_an_article", "no .news/.article/.interview/.opinion root")
        return found[0]

    def headline(self) -> HtmlElement | None:
        """The root's first ``<h1>`` (looked for once)."""
        if self._headline is False:
            found = elements(xpath(self.root(), ".//h1"))
            self._headline = found[0] if found else None
        return self._headline if isinstance(self._headline, HtmlElement) else None

    # -- the head -------------------------------------------------------------------------
    def _news_article_ld(self) -> dict[str, Any] | None:
        """The last JSON-LD ``NewsArticle`` (or other article or gallery) of the page."""
        if self._ld is False:
            kinds = {"NewsArticle", "Article", "ReportageNewsArticle"} | _GALLERY_TYPES
            found = [obj for obj in self._ld_list() if _types(obj) & kinds]
            self._ld = found[-1] if found else None
        return self._ld if isinstance(self._ld, dict) else None

    def _ld_list(self) -> list[dict[str, Any]]:
        """The page's JSON-LD objects (``_ld_objects``), parsed once."""
        if self._lds is None:
            self._lds = list(_ld_objects(self.sel))
        return self._lds

    def _meta_raw(self, prop: str, *attrs: str) -> str | None:
        """The ``content`` of the first ``<meta>`` whose ``attrs`` (``property``, ``name``)
        is ``prop``, as written (every ``<meta>`` is read in one pass, the first time)."""
        if self._metas is None:
            metas: dict[tuple[str, str], tuple[int, str]] = {}
            for position, el in enumerate(self.sel.root.iter("meta")):
                content = el.get("content")
                if content is None:
                    continue
                for attr in ("property", "name"):
                    key = el.get(attr)
                    if key is not None:
                        metas.setdefault((attr, key), (position, content))
            self._metas = metas
        found = [self._metas[(a, prop)] for a in attrs if (a, prop) in self._metas]
        return min(found)[1] if found else None

    def _meta(self, prop: str) -> str | None:
        """The first ``<meta property=… or name=…>`` of ``prop``, cleaned."""
        value = self._meta_raw(prop, "property", "name")
        return value if value is None else clean_text(value)

    def _logos(self) -> set[str]:
        out: set[str] = set()
        for obj in self._ld_list():
            out.update(_urls_of(obj.get("logo")))
            publisher = obj.get("publisher")
            if isinstance(publisher, dict):
                out.update(_urls_of(publisher.get("logo")))
        return out

    def _head_images(self) -> tuple[list[str], list[str]]:
        """(JSON-LD ``image`` URLs, ``og:image``/``twitter:image`` URLs), logos left out."""
        if self._heads is None:
            self._heads = self._read_head_images()
        return self._heads

    def _read_head_images(self) -> tuple[list[str], list[str]]:
        logos = {absolute(u, self.url) for u in self._logos()}

        def keep(urls: Iterable[str]) -> list[str]:
            out: list[str] = []
            for raw in urls:
                url = absolute(raw, self.url)
                if url not in logos and "logo" not in url.lower() and url not in out:
                    out.append(url)
            return out

        ld = self._news_article_ld() or {}
        meta = [m for m in (self._meta("og:image"), self._meta("twitter:image")) if m]
        return keep(_urls_of(ld.get("image"))), keep(meta)

    # -- url ------------------------------------------------------------------------------
    def _url_answers(self) -> list[Answer]:
        own = self.urls.canonical(self.url)
        own_id = self.urls.article_id(own) if own else None
        ld = self._news_article_ld() or {}
        entity = ld.get("mainEntityOfPage")
        if isinstance(entity, dict):
            entity = entity.get("@id") or entity.get("url")
        candidates = [
            ("link", self.sel.xpath('//link[@rel="canonical"]/@href').get()),
            ("meta", self._meta_raw("og:url", "property")),
            ("ld", entity if isinstance(entity, str) else None),
        ]
        out: list[Answer] = []
        for signal, raw in candidates:
            found = self.urls.canonical(raw, self.url) if raw else None
            found_id = self.urls.article_id(found) if found else None
            if found_id is not None and (own_id is None or found_id == own_id):
                out.append(Answer(signal, found))
        if own is not None and own_id is not None:
            out.append(Answer("request", own))
        return out

    def canonical_url(self) -> str:
        """The article's canonical URL (see the module docstring for the order)."""
        url = resolve("url", self._url_answers()).value
        if not isinstance(url, str):
            raise ExtractionError("not_an_article", f"no article URL for {self.url}")
        return url

    # -- photos and kind ------------------------------------------------------------------
    def photos(self) -> PhotoScan:
        if self._photos is None:
            ld_images, meta_images = self._head_images()
            self._photos = scan_photos(
                self.root(),
                self.url,
                headline=self.headline(),
                body=self._text_content(),
                named=[*ld_images, *meta_images],
                logos=self._logos(),
            )
        return self._photos

    def _kind_answers(self) -> list[Answer]:
        root = self.root()
        out: list[Answer] = []
        ld = self._news_article_ld()
        if ld is not None and _types(ld) & _GALLERY_TYPES:
            out.append(Answer("ld", "gallery"))
        scan = self.photos()
        if scan.galleries:
            out.append(Answer("structure", "gallery"))
        photo_imgs = {p.img for p in scan.photos}
        for el in root.iter(etree.Element):  # elements alone: no comments or the like
            slider = _SLIDER_CLASS_RE.search(classes(el))
            if slider and any(img in photo_imgs for img in el.iter("img")):
                out.append(Answer("class", "gallery"))
                break
        assert self._template is not None
        out.append(Answer("page", self._template))
        return out

    def kind(self) -> ArticleKind:
        value: ArticleKind = resolve("kind", self._kind_answers()).value
        return value

    def _image_answers(self) -> tuple[list[Answer], list[Answer]]:
        """(images answers, first caption answer)."""
        photos: list[Photo] = self.photos().photos
        out: list[Answer] = []
        if photos:
            out.append(
                Answer(
                    "structure",
                    [Image(url=p.url, caption=p.caption, credit=p.credit) for p in photos],
                )
            )
        ld_images, meta_images = self._head_images()
        if ld_images:
            out.append(Answer("ld", [Image(url=u, caption=None, credit=None) for u in ld_images]))
        if meta_images:
            out.append(Answer("meta", [Image(url=meta_images[0], caption=None, credit=None)]))
        caption = [Answer(photos[0].caption_from, photos[0].caption)] if photos else []
        return out, [a for a in caption if a.signal]

    def images(self) -> list[Image]:
        value: list[Image] = resolve("images", self._image_answers()[0]).value or []
        return value

    # -- title, dates, lead ---------------------------------------------------------------
    def _title_answers(self) -> list[Answer]:
        out: list[Answer] = []
        ld = self._news_article_ld()
        if ld is not None and isinstance(ld.get("headline"), str):
            title = clean_text(ld["headline"])
            if title:
                out.append(Answer("ld", title))
        og = self._meta("og:title")
        if og and strip_title_suffix(og)[0]:
            out.append(Answer("meta", strip_title_suffix(og)[0]))
        h1 = self.headline()
        if h1 is not None and visible_text(h1):
            out.append(Answer("page", visible_text(h1)))
        page_title = clean_text(" ".join(xpath(self.sel.root, "//title//text()")))
        if page_title and strip_title_suffix(page_title)[0]:
            out.append(Answer("head", strip_title_suffix(page_title)[0]))
        return out

    def title(self) -> str:
        return self._required_title(resolve("title", self._title_answers()))

    @staticmethod
    def _required_title(resolved: Resolved) -> str:
        if not isinstance(resolved.value, str) or not resolved.value:
            raise ExtractionError(
                "missing_field:title", "no JSON-LD headline, og:title, feed title, h1 or title"
            )
        return resolved.value

    def _published_answers(self) -> list[Answer]:
        out: list[Answer] = []
        ld = self._news_article_ld()
        if ld is not None and (found := parse_iso(ld.get("datePublished"))) is not None:
            out.append(Answer("ld", found))
        if (found := parse_iso(self._meta("article:published_time"))) is not None:
            out.append(Answer("meta", found))
        for stamp in self.root().xpath(".//dateformat/@time"):
            if (found := from_unix(str(stamp))) is not None:
                out.append(Answer("page", found))
                break
        return out

    def published_at(self) -> datetime | None:
        value: datetime | None = resolve("published_at", self._published_answers()).value
        return value

    def _modified_answers(self) -> list[Answer]:
        out: list[Answer] = []
        ld = self._news_article_ld()
        if ld is not None and (found := parse_iso(ld.get("dateModified"))) is not None:
            out.append(Answer("ld", found))
        if (found := parse_iso(self._meta("article:modified_time"))) is not None:
            out.append(Answer("meta", found))
        return out

    def modified_at(self) -> datetime | None:
        value: datetime | None = resolve("modified_at", self._modified_answers()).value
        return value

    def _lead_element(self) -> HtmlElement | None:
        return next(iselect(self.root(), LEAD_SELECTOR), None)  # the walk stops at it

    def _lead_answers(self) -> list[Answer]:
        out: list[Answer] = []
        element = self._lead_element()
        if element is not None:
            out.append(Answer("page", visible_text(element) or None))
        body = self._body()
        paragraphs = body.paragraphs if body is not None else []
        dateline_end = _dateline_end(paragraphs[0]) if paragraphs else 0
        ld = self._news_article_ld() or {}
        described = [("ld", clean_text(ld.get("description")) if ld else "")]
        described += [
            ("meta", self._meta(name) or "")
            for name in ("og:description", "description", "twitter:description")
        ]
        for signal, text in described:
            if text and not structure.is_body_opening(text, paragraphs, dateline_end):
                out.append(Answer(signal, text))
        return out

    def lead(self) -> str | None:
        value: str | None = resolve("lead", self._lead_answers()).value
        return value

    # -- body and related -----------------------------------------------------------------
    def _text_content(self) -> HtmlElement | None:
        """The first ``.text-content`` in the article root, else in the page (found once)."""
        if self._content is False:
            root = self.root()
            inside = (el for el in iselect(root, ".text-content") if el is not root)
            self._content = next(inside, None)
            if self._content is None:
                self._content = next(iselect(self.sel.root, ".text-content"), None)
        return self._content if isinstance(self._content, HtmlElement) else None

    def _body(self) -> _Body | None:
        """The body read from ``div.text-content``, else from the structural container."""
        page = self._body_from("page")
        return page if page is not None else self._body_from("structure")

    def _body_from(self, signal: str) -> _Body | None:
        if signal not in self._bodies:
            self._bodies[signal] = self._read_body(signal)
        return self._bodies[signal]

    def _read_body(self, signal: str) -> _Body | None:
        occupied = self.photos().occupied
        if signal == "page":
            content = self._text_content()
        else:
            excluded = set(occupied)
            lead = self._lead_element()
            if lead is not None:
                excluded.add(lead)
            content = structure.body_container(
                self.root(), self.headline(), excluded, self._is_paragraph
            )
        if content is None:
            return None
        paragraphs, links = self._walk(content, occupied)
        if not paragraphs:
            return None
        return _Body(paragraphs, self._related(links))

    def _is_paragraph(self, el: HtmlElement, text: str) -> bool:
        return not (
            _is_junk(text)
            or _is_furniture(el, text)
            or _is_read_also(el, text)
            or _is_read_also_label(el, text)
        )

    def _related(self, links: list[HtmlElement]) -> list[Related]:
        related: list[Related] = []
        seen: set[int] = set()
        for a in links:
            url = self.urls.canonical(str(a.get("href")), self.url)
            if url is None:
                continue
            article_id = self.urls.article_id(url)
            text = visible_text(a)
            match = READ_ALSO_RE.match(text)
            title = text[match.end() :] if match else text
            if article_id is None or article_id in seen or not title:
                continue
            seen.add(article_id)
            related.append(Related(id=article_id, url=url, title=title))
        return related

    @staticmethod
    def _walk(
        content: HtmlElement, occupied: frozenset[HtmlElement]
    ) -> tuple[list[str], list[HtmlElement]]:
        """Paragraph texts and "Read also" links of ``content``, in order (no recursion: a
        stack of sibling iterators, each with its own "after a Read also label" state)."""
        out: list[str] = []
        links: list[HtmlElement] = []
        stack: list[tuple[Iterator[Any], list[bool]]] = [(iter(content), [False])]
        while stack:
            children, after_label = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            if not is_element(child) or child in occupied:
                continue
            text = visible_text(child)
            if _is_read_also(child, text):
                links.extend(anchors(child))
                after_label[0] = False
                continue
            if _is_read_also_label(child, text):
                after_label[0] = True
                continue
            if after_label[0] and _link_only(child, text):
                links.extend(anchors(child))
                continue
            after_label[0] = False
            if _is_furniture(child, text):
                continue
            if tag_of(child) in BLOCK_TAGS:
                if not _is_junk(text):
                    out.append(text)
                continue
            stack.append((iter(child), [False]))
        return out, links

    def body(self) -> str:
        body = self._body()
        return "\n\n".join(body.paragraphs) if body is not None else ""

    def related(self) -> list[Related]:
        body = self._body()
        return body.related if body is not None else []

    # -- tags and mark --------------------------------------------------------------------
    def _tag_answers(self) -> list[Answer]:
        out: list[Answer] = []
        document = self.sel.root
        for query in ("div.tags__list a.tags__item", ".tags__list a", "a.tags__item"):
            found = [clean_text(str(xpath(el, "string()"))) for el in select(document, query)]
            found = [t for t in found if t]
            if found:
                out.append(Answer("page", found))
                break
        by_structure = structure.tags_by_structure(
            self.root(), self.headline(), self._text_content(), self.urls, self.url
        )
        if by_structure:
            out.append(Answer("structure", by_structure))
        return out

    def tags(self) -> list[str]:
        value: list[str] = resolve("tags", self._tag_answers()).value or []
        return value

    def _mark_answers(self) -> list[Answer]:
        root, headline = self.root(), self.headline()
        out: list[Answer] = []
        found = structure.mark_by_structure(root, headline, self.urls, self.url)
        if found:
            out.append(Answer("structure", found))
        guessed = structure.mark_by_class(root, headline)
        if guessed:
            out.append(Answer("class", guessed))
        return out

    def mark(self) -> str | None:
        value: str | None = resolve("mark", self._mark_answers()).value
        return value

    # -- the item -------------------------------------------------------------------------
    def extract(self, hints: FeedHints | None = None) -> Extraction:
        """The article item and its signals; ``hints`` are what feeds said of the article.
        Raises ``ExtractionError`` when the page cannot give an article."""
        hints = hints or FeedHints.none()
        self.root()
        fields: dict[str, Resolved] = {"url": resolve("url", self._url_answers())}
        url = fields["url"].value
        if not isinstance(url, str):
            raise ExtractionError("not_an_article", f"no article URL for {self.url}")
        article_id = self.urls.article_id(url)
        section = self.urls.section_of(url)
        assert article_id is not None and section is not None
        fields["kind"] = resolve("kind", self._kind_answers())
        fields["title"] = resolve("title", [*self._title_answers(), *hints.title()])
        fields["lead"] = resolve("lead", [*self._lead_answers(), *hints.lead()])
        fields.update(self._body_fields(fields["kind"].value))
        published = [*self._published_answers(), *hints.published_at()]
        fields["published_at"] = resolve("published_at", published)
        fields["modified_at"] = resolve("modified_at", self._modified_answers())
        fields["tags"] = resolve("tags", self._tag_answers())
        fields["mark"] = resolve("mark", [*self._mark_answers(), *hints.mark()])
        images, caption = self._image_answers()
        fields["images"] = resolve("images", [*images, *hints.images()])
        fields["caption"] = resolve("caption", caption)
        item = ArticleItem(
            id=article_id,
            url=url,
            section=section,
            kind=fields["kind"].value,
            title=self._required_title(fields["title"]),
            lead=fields["lead"].value,
            body="\n\n".join(fields["body"].value or []),
            dateline=fields["dateline"].value,
            published_at=fields["published_at"].value,
            modified_at=fields["modified_at"].value,
            tags=fields["tags"].value or [],
            mark=fields["mark"].value,
            images=fields["images"].value or [],
            related=fields["related"].value or [],
            extracted=provenance(fields),
        )
        return Extraction(item, fields, tuple(hints.feeds()))

    def _body_fields(self, kind: str) -> dict[str, Resolved]:
        """Body, dateline and related, from the one body the page has. A gallery may have
        none (its slides are its content); any other kind without one is a failure."""
        answers: dict[str, list[Answer]] = {"body": [], "dateline": [], "related": []}
        for signal in ("page", "structure"):
            body = self._body_from(signal)
            if body is None:
                continue
            answers["body"].append(Answer(signal, body.paragraphs))
            dateline = dateline_of(body.paragraphs[0])
            if dateline:
                answers["dateline"].append(Answer(signal, dateline))
            if body.related:
                answers["related"].append(Answer(signal, body.related))
            break  # the structural body is read only where the page's own is missing
        if not answers["body"] and kind != "gallery":
            where = "div.text-content" if self._text_content() is not None else "the page"
            raise ExtractionError("missing_field:body", f"{where} holds no paragraphs")
        return {name: resolve(name, found) for name, found in answers.items()}

    def to_item(self) -> ArticleItem:
        """The article item from the page alone; raises ``ExtractionError`` when the page
        cannot give one."""
        return self.extract().item

    def links(self) -> list[str]:
        """Canonical URLs to follow: Read-also targets, tags, links in the article."""
        root = self.root()
        raw: list[str] = [r["url"] for r in self.related()]
        raw += self.sel.css("div.tags__list a::attr(href), a.tags__item::attr(href)").getall()
        raw += [str(a.get("href")) for a in anchors(root)]
        return _dedupe_follow(self.urls, raw, self.url)


FOLLOW_KINDS = frozenset({"article", "section", "theme_or_tag"})


def _dedupe_follow(urls: SiteUrls, raw: Iterable[str], referer: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for href in raw:
        if not href or "{{" in href:
            continue
        url = urls.canonical(href, referer)
        if url is None or url in seen or urls.url_kind(url) not in FOLLOW_KINDS:
            continue
        seen.add(url)
        out.append(url)
    return out
