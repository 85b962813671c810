"""The article page: one tass.com article response → one ``ArticleItem`` and its links.

A pure function of (url, html): no requests, no settings, no clock. Every field prefers the
most stable signal and falls back (spec §3.2):

- page check: an empty body → ``empty_body``; no closing ``</html>`` → ``truncated`` (the
  server always sends a complete document, and a body cut off in transit loses its end
  first; JSON-LD sits in the head, so its presence proves nothing about the body). No
  article root (``.news``, ``#news``, ``.article``, ``.interview``, ``.opinion``) →
  ``not_an_article``.
- url/id/section: ``link[rel=canonical]``, then ``og:url``, then JSON-LD ``mainEntityOfPage``
  when they name the same article id as the requested URL (they give the primary path);
  otherwise the requested URL. Section is the canonical path's first segment.
- kind: a photo slider (a ``gallery``/``slider``/``swiper``/``carousel`` container holding
  images) → ``gallery``; else the root template's class.
- title: the last JSON-LD ``NewsArticle`` ``headline`` → ``og:title`` minus `` - TASS`` → the
  root's ``h1`` → ``<title>`` minus the suffix.
- published_at: JSON-LD ``datePublished`` → the first ``dateformat[time]`` under the root (unix
  seconds). modified_at: JSON-LD ``dateModified`` only. Both aware, in UTC.
- lead: the template's lead element (present but empty → None) → ``og:description`` (not for
  interviews, which have no lead).
- body: ``p``, ``h2``–``h4`` and ``blockquote`` of ``div.text-content`` in order, skipping
  "Read also" blocks (any element whose text is "Read also" plus only link texts, or a bare
  "Read also" label and the link-only elements after it), ads (``Реклама``), captions and
  credits, share buttons, Angular templates (``{{…}}``) and scripts.
- dateline: the city that starts the first paragraph (``MOSCOW, October 26. /TASS/.``).
- tags: ``div.tags__list a.tags__item`` (→ ``.tags__list a`` → ``a.tags__item``).
- mark: the first element before the headline whose class names a ``mark`` or ``label``
  (``div.*-header__mark > a.mark``, ``span.tag-label``, ``div.marks > div.marks__item``).
- images: ``img`` inside ``.news-media``, ``figure`` or a slider; caption and credit from the
  text around it (the caption element, ``figcaption``, or the ``p`` right after the media
  block), split at ``©``; the ``alt`` text as the last resort for a caption.
- related: the links of the "Read also" blocks, canonical, in page order, one per id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from lxml.html import HtmlElement
from parsel import Selector

from crawler.items import ArticleItem, ArticleKind, Image, Related
from crawler.pages.errors import ExtractionError
from crawler.text import clean_text, decode_html, from_unix, parse_iso, strip_title_suffix
from crawler.urls import SiteUrls

DATELINE_RE = re.compile(
    r"^(?P<city>[A-Z][A-Z .'\-]*(?: /[^/]+/)?), [A-Z][a-z]+ \d{1,2}\. /TASS/\."
)
READ_ALSO_RE = re.compile(r"^\W*read\s+also[\s:.\-–—]*", re.IGNORECASE)
_HTML_END_RE = re.compile(r"</html\s*>", re.IGNORECASE)
_TEMPLATE_RE = re.compile(r"\{\{.*?\}\}")
_AD_LABEL = "Реклама"

ROOT_SELECTOR = "#news, .news, .article, .interview, .opinion"
TEMPLATES: tuple[ArticleKind, ...] = ("news", "article", "interview", "opinion")
LEAD_SELECTOR = ".news-header__lead, .article-lead, .opinion-header__lead, .interview-header__lead"
BLOCK_TAGS = frozenset({"p", "h2", "h3", "h4", "blockquote"})
SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "button", "iframe", "svg", "form", "input"}
)
SPACED_TAGS = frozenset(
    {
        "br",
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "figure",
        "figcaption",
        "section",
        "article",
        "aside",
        "header",
        "footer",
        "tr",
        "td",
        "th",
        "table",
        "dt",
        "dd",
        "hr",
    }
)
"""Block-level tags: their edges separate words (``<br>`` too)."""
FURNITURE_TAGS = frozenset({"figure", "figcaption", "aside", "nav", "img", "picture", "video"})
_FURNITURE_CLASS_RE = re.compile(
    r"(?:^|[\s_-])(?:ad|ads|adfox|advert\w*|banner\w*|share\w*|social\w*|caption\w*|"
    r"copyright|credit\w*|news-media\w*|photo\w*|gallery\w*|slider\w*|subscribe\w*|promo\w*|"
    r"related\w*|most-read\w*|widget\w*)(?:$|[\s_-])",
    re.IGNORECASE,
)
_SLIDER_CLASS_RE = re.compile(r"gallery|slider|swiper|carousel|slideshow", re.IGNORECASE)
_MEDIA_CLASS_RE = re.compile(r"(?:^|\s)news-media(?:\s|$)")
_CAPTION_CLASS_RE = re.compile(r"media|caption|credit|copyright|photo", re.IGNORECASE)
_MARK_CLASS_RE = re.compile(r"(?:^|[\s_-])(?:mark|marks|label)(?:$|[\s_-])", re.IGNORECASE)


def _elements(found: Any) -> list[HtmlElement]:
    """The elements of an XPath result (dropping strings, comments and the like)."""
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, HtmlElement) and isinstance(e.tag, str)]


def _classes(el: HtmlElement) -> str:
    return str(el.get("class") or "")


def _has_class(el: HtmlElement, token: str) -> bool:
    return token in _classes(el).split()


def element_text(el: HtmlElement) -> str:
    """The visible text of ``el``: no scripts/styles/comments, ``<br>`` as a space, clean.

    Walked with a stack of its own, not by recursion: a page may nest thousands deep."""
    parts: list[str] = []
    # Elements still to open, and the strings (tails, block edges) between them, last first.
    todo: list[HtmlElement | str] = [el]
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            parts.append(node)
            continue
        # comments, processing instructions and skipped tags contribute nothing (their tail
        # is added by the parent)
        if not isinstance(node.tag, str) or node.tag.lower() in SKIP_TAGS:
            continue
        spaced = node.tag.lower() in SPACED_TAGS
        if spaced:
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        then: list[HtmlElement | str] = []
        for child in node:
            then.append(child)
            if child.tail:
                then.append(child.tail)
        if spaced:
            then.append(" ")
        todo.extend(reversed(then))
    return clean_text("".join(parts))


def _is_junk(text: str) -> bool:
    return not text or text.startswith(_AD_LABEL) or bool(_TEMPLATE_RE.search(text))


def _anchors(el: HtmlElement) -> list[HtmlElement]:
    return _elements(el.xpath(".//a[@href]"))


def _link_only(el: HtmlElement, text: str) -> bool:
    """Whether the text of ``el`` is nothing but its links' texts (and punctuation)."""
    anchors = _anchors(el)
    if not anchors:
        return False
    linked = sum(len(re.sub(r"\W", "", element_text(a))) for a in anchors)
    return len(re.sub(r"\W", "", text)) - linked <= 2


def _is_read_also(el: HtmlElement, text: str) -> bool:
    """A "Read also" block: the label, then only linked headlines."""
    match = READ_ALSO_RE.match(text)
    if match is None:
        return False
    return _link_only(el, text[match.end() :])


def _is_read_also_label(el: HtmlElement, text: str) -> bool:
    match = READ_ALSO_RE.match(text)
    return match is not None and match.end() == len(text) and not _anchors(el)


def _is_furniture(el: HtmlElement, text: str) -> bool:
    tag = str(el.tag).lower()
    if tag in SKIP_TAGS or tag in FURNITURE_TAGS:
        return True
    if _FURNITURE_CLASS_RE.search(_classes(el)):
        return True
    return tag not in BLOCK_TAGS and text.startswith(_AD_LABEL)


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


def _is_news_article(obj: dict[str, Any]) -> bool:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return "NewsArticle" in kinds


def dateline_of(paragraph: str) -> str | None:
    """The city printed at the start of a first paragraph, or None."""
    match = DATELINE_RE.match(paragraph)
    return match.group("city") if match else None


def _image_src(img: HtmlElement) -> str | None:
    for attr in ("src", "data-src", "data-lazy-src", "data-original"):
        value = (img.get(attr) or "").strip()
        if value and not value.startswith("data:") and "{{" not in value:
            return value
    srcset = (img.get("srcset") or img.get("data-srcset") or "").strip()
    if srcset:
        return srcset.split(",")[0].split()[0]
    return None


def split_credit(text: str) -> tuple[str | None, str | None]:
    """``"A view of Moscow © Ivan Petrov/TASS"`` → (caption, credit); either may be None."""
    text = clean_text(text)
    at = text.find("©")
    if at < 0:
        return (text or None), None
    caption = text[:at].strip(" \u00a0-–—|,;")
    credit = "© " + text[at + 1 :].strip()
    return (caption or None), (credit if credit != "© " else None)


class ArticlePage:
    """One article page. ``to_item()`` extracts the item; ``links()`` lists URLs to follow."""

    def __init__(
        self, url: str, html: str | bytes, urls: SiteUrls, encoding: str | None = None
    ) -> None:
        self.url = url
        self.urls = urls
        self.text = decode_html(html, encoding)
        self.sel = Selector(text=self.text)
        self._root: HtmlElement | None = None
        self._template: ArticleKind | None = None
        self._found = False
        self._ld: dict[str, Any] | bool | None = False
        self._parsed_body: tuple[list[str], list[Related]] | None = None

    # -- structure ------------------------------------------------------------------------
    def is_truncated(self) -> bool:
        """Whether the document was cut off: it has no closing ``</html>``."""
        return _HTML_END_RE.search(self.text, max(0, len(self.text) - 65536)) is None

    def _find_root(self) -> tuple[HtmlElement, ArticleKind] | None:
        if self._found:
            if self._root is None or self._template is None:
                return None
            return self._root, self._template
        self._found = True
        scopes = [self.sel.css("main"), self.sel.css("body")]
        for scope in scopes:
            for candidate in scope.css(ROOT_SELECTOR):
                el = candidate.root
                if not isinstance(el, HtmlElement):
                    continue
                if not (el.xpath(".//h1") or candidate.css(".text-content")):
                    continue
                template = self._template_of(el)
                if template is None:
                    continue
                self._root, self._template = el, template
                return el, template
        return None

    @staticmethod
    def _template_of(el: HtmlElement) -> ArticleKind | None:
        classes = _classes(el).split()
        for kind in TEMPLATES:
            if kind in classes:
                return kind
        if el.get("id") == "news":
            return "news"
        return None

    def root(self) -> HtmlElement:
        """The article root element; raises ``ExtractionError`` when the page has none."""
        if not self.text.strip():
            raise ExtractionError("empty_body", "the response body is empty")
        if self.is_truncated():
            raise ExtractionError("truncated", f"no closing </html> in {len(self.text)} chars")
        found = self._find_root()
        if found is None:
            raise ExtractionError("not_an_article", "no .news/.article/.interview/.opinion root")
        return found[0]

    # -- fields ---------------------------------------------------------------------------
    def _news_article_ld(self) -> dict[str, Any] | None:
        """The last JSON-LD ``NewsArticle`` of the page (parsed once)."""
        if self._ld is False:
            found = [obj for obj in _ld_objects(self.sel) if _is_news_article(obj)]
            self._ld = found[-1] if found else None
        return self._ld if isinstance(self._ld, dict) else None

    def _meta(self, prop: str) -> str | None:
        value = self.sel.xpath(f'//meta[@property="{prop}" or @name="{prop}"]/@content').get()
        return value if value is None else clean_text(value)

    def canonical_url(self) -> str:
        """The article's canonical URL (see the module docstring for the order)."""
        own = self.urls.canonical(self.url)
        own_id = self.urls.article_id(own) if own else None
        ld = self._news_article_ld() or {}
        entity = ld.get("mainEntityOfPage")
        if isinstance(entity, dict):
            entity = entity.get("@id") or entity.get("url")
        candidates = [
            self.sel.xpath('//link[@rel="canonical"]/@href').get(),
            self.sel.xpath('//meta[@property="og:url"]/@content').get(),
            entity if isinstance(entity, str) else None,
        ]
        for raw in candidates:
            if not raw:
                continue
            found = self.urls.canonical(raw, self.url)
            if found is None:
                continue
            found_id = self.urls.article_id(found)
            if found_id is not None and (own_id is None or found_id == own_id):
                return found
        if own is not None and own_id is not None:
            return own
        raise ExtractionError("not_an_article", f"no article URL for {self.url}")

    def kind(self) -> ArticleKind:
        root = self.root()
        if self._slider(root) is not None:
            return "gallery"
        template = self._template
        assert template is not None
        return template

    @staticmethod
    def _slider(root: HtmlElement) -> HtmlElement | None:
        for el in root.iter():
            if not isinstance(el.tag, str) or not isinstance(el, HtmlElement):
                continue
            if _SLIDER_CLASS_RE.search(_classes(el)) and _elements(el.xpath(".//img")):
                return el
        return None

    def _headline_el(self, root: HtmlElement) -> HtmlElement | None:
        found = _elements(root.xpath(".//h1"))
        return found[0] if found else None

    def title(self) -> str:
        root = self.root()
        ld = self._news_article_ld()
        if ld is not None and isinstance(ld.get("headline"), str):
            title = clean_text(ld["headline"])
            if title:
                return title
        og = self._meta("og:title")
        if og and strip_title_suffix(og)[0]:
            return strip_title_suffix(og)[0]
        h1 = self._headline_el(root)
        if h1 is not None and element_text(h1):
            return element_text(h1)
        page_title = clean_text(" ".join(self.sel.xpath("//title//text()").getall()))
        if page_title and strip_title_suffix(page_title)[0]:
            return strip_title_suffix(page_title)[0]
        raise ExtractionError("missing_field:title", "no JSON-LD headline, og:title, h1 or title")

    def published_at(self) -> datetime | None:
        root = self.root()
        ld = self._news_article_ld()
        if ld is not None:
            found = parse_iso(ld.get("datePublished"))
            if found is not None:
                return found
        for stamp in root.xpath(".//dateformat/@time"):
            found = from_unix(str(stamp))
            if found is not None:
                return found
        return None

    def modified_at(self) -> datetime | None:
        ld = self._news_article_ld()
        return parse_iso(ld.get("dateModified")) if ld is not None else None

    def lead(self) -> str | None:
        root = self.root()
        el = Selector(root=root).css(LEAD_SELECTOR)
        if el:
            node = el[0].root
            return (element_text(node) or None) if isinstance(node, HtmlElement) else None
        if self.kind() == "interview":
            return None
        return self._meta("og:description") or None

    def _text_content(self, root: HtmlElement) -> HtmlElement | None:
        found = _elements(
            root.xpath(
                ".//*[contains(concat(' ', normalize-space(@class), ' '), ' text-content ')]"
            )
        )
        if not found:
            found = _elements(
                self.sel.root.xpath(
                    "//*[contains(concat(' ', normalize-space(@class), ' '), ' text-content ')]"
                )
            )
        return found[0] if found else None

    def _body_and_related(self) -> tuple[list[str], list[Related]]:
        if self._parsed_body is None:
            self._parsed_body = self._parse_body()
        return self._parsed_body

    def _parse_body(self) -> tuple[list[str], list[Related]]:
        root = self.root()
        content = self._text_content(root)
        if content is None:
            raise ExtractionError("missing_field:body", "no div.text-content")
        paragraphs: list[str] = []
        links: list[HtmlElement] = []
        self._walk(content, paragraphs, links)
        related: list[Related] = []
        seen: set[int] = set()
        for a in links:
            url = self.urls.canonical(str(a.get("href")), self.url)
            if url is None:
                continue
            article_id = self.urls.article_id(url)
            title = element_text(a)
            if article_id is None or article_id in seen or not title:
                continue
            seen.add(article_id)
            related.append(Related(id=article_id, url=url, title=title))
        return paragraphs, related

    def _walk(self, el: HtmlElement, out: list[str], links: list[HtmlElement]) -> None:
        """The blocks under ``el`` in document order, with a stack of its own rather than
        recursion (a page may nest thousands deep)."""
        after_label = False
        # The children still to visit at each depth: a "Read also" label only covers the
        # siblings after it, so going down or coming back up forgets it.
        levels: list[Iterator[Any]] = [iter(el)]
        while levels:
            child = next(levels[-1], None)
            if child is None:
                levels.pop()
                after_label = False
                continue
            if not isinstance(child.tag, str) or not isinstance(child, HtmlElement):
                continue
            text = element_text(child)
            if _is_read_also(child, text):
                links.extend(_anchors(child))
                after_label = False
                continue
            if _is_read_also_label(child, text):
                after_label = True
                continue
            if after_label and _link_only(child, text):
                links.extend(_anchors(child))
                continue
            after_label = False
            if _is_furniture(child, text):
                continue
            if child.tag.lower() in BLOCK_TAGS:
                if not _is_junk(text):
                    out.append(text)
                continue
            levels.append(iter(child))

    def body(self) -> str:
        paragraphs, _related = self._body_and_related()
        if not paragraphs:
            raise ExtractionError("missing_field:body", "div.text-content holds no paragraphs")
        return "\n\n".join(paragraphs)

    def related(self) -> list[Related]:
        return self._body_and_related()[1]

    def tags(self) -> list[str]:
        for query in ("div.tags__list a.tags__item", ".tags__list a", "a.tags__item"):
            found = [clean_text(t) for t in self._tag_anchors(query).xpath("string()").getall()]
            found = [t for t in found if t]
            if found:
                return found
        return []

    def _tag_anchors(self, query: str) -> Any:
        return self.sel.css(query)

    def mark(self) -> str | None:
        root = self.root()
        headline = self._headline_el(root)
        if headline is None:
            return None
        for el in root.iter():
            if el is headline:
                break
            if not isinstance(el.tag, str) or not isinstance(el, HtmlElement):
                continue
            if _MARK_CLASS_RE.search(_classes(el)):
                text = element_text(el)
                if text and len(text) <= 120:
                    return text
        return None

    def _mark_links(self) -> list[str]:
        """Hrefs of links in (or being) a mark element above the headline."""
        root = self.root()
        headline = self._headline_el(root)
        out: list[str] = []
        for el in root.iter():
            if el is headline:
                break
            if not isinstance(el, HtmlElement) or el.tag != "a":
                continue
            parent = el.getparent()
            classes = _classes(el) + " " + (_classes(parent) if parent is not None else "")
            if _MARK_CLASS_RE.search(classes):
                out.append(str(el.get("href") or ""))
        return out

    def images(self) -> list[Image]:
        root = self.root()
        content = self._text_content(root)
        out: list[Image] = []
        seen: set[str] = set()
        for img in _elements(root.xpath(".//img")):
            if content is not None and _inside(img, content):
                continue
            container = self._media_container(img, root)
            if container is None:
                continue
            src = _image_src(img)
            if src is None:
                continue
            url = "https:" + src if src.startswith("//") else urljoin(self.url, src)
            if url in seen:
                continue
            seen.add(url)
            caption, credit = self._caption(img, container)
            out.append(Image(url=url, caption=caption, credit=credit))
        return out

    @staticmethod
    def _media_container(img: HtmlElement, root: HtmlElement) -> HtmlElement | None:
        for el in img.iterancestors():
            if el is root:
                return None
            classes = _classes(el)
            if (
                el.tag == "figure"
                or _MEDIA_CLASS_RE.search(classes)
                or _SLIDER_CLASS_RE.search(classes)
            ):
                return el
        return None

    @staticmethod
    def _caption(img: HtmlElement, container: HtmlElement) -> tuple[str | None, str | None]:
        text = element_text(container)
        if not text:
            sibling = container.getnext()
            while sibling is not None and not isinstance(sibling.tag, str):
                sibling = sibling.getnext()
            if isinstance(sibling, HtmlElement):
                sibling_text = element_text(sibling)
                if (
                    sibling.tag == "figcaption"
                    or _CAPTION_CLASS_RE.search(_classes(sibling))
                    or ("©" in sibling_text and len(sibling_text) < 400)
                ) and "text-content" not in _classes(sibling):
                    text = sibling_text
        caption, credit = split_credit(text)
        if caption is None:
            alt = clean_text(str(img.get("alt") or img.get("title") or ""))
            alt_caption, alt_credit = split_credit(alt)
            caption = alt_caption
            credit = credit or alt_credit
        return caption, credit

    # -- the item -------------------------------------------------------------------------
    def to_item(self) -> ArticleItem:
        """The article item; raises ``ExtractionError`` when the page cannot give one."""
        self.root()
        url = self.canonical_url()
        article_id = self.urls.article_id(url)
        section = self.urls.section_of(url)
        assert article_id is not None and section is not None
        paragraphs, related = self._body_and_related()
        if not paragraphs:
            raise ExtractionError("missing_field:body", "div.text-content holds no paragraphs")
        return ArticleItem(
            id=article_id,
            url=url,
            section=section,
            kind=self.kind(),
            title=self.title(),
            lead=self.lead(),
            body="\n\n".join(paragraphs),
            dateline=dateline_of(paragraphs[0]),
            published_at=self.published_at(),
            modified_at=self.modified_at(),
            tags=self.tags(),
            mark=self.mark(),
            images=self.images(),
            related=related,
        )

    def links(self) -> list[str]:
        """Canonical URLs to follow: Read-also targets, tags, the mark, links in the article."""
        root = self.root()
        raw: list[str] = [r["url"] for r in self._body_and_related()[1]]
        raw += self.sel.css("div.tags__list a::attr(href), a.tags__item::attr(href)").getall()
        raw += self._mark_links()
        raw += [str(a.get("href")) for a in _anchors(root)]
        return _dedupe_follow(self.urls, raw, self.url)


def _inside(el: HtmlElement, ancestor: HtmlElement) -> bool:
    return any(parent is ancestor for parent in el.iterancestors())


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
