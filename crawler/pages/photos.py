"""The photos of an article: which ``img`` elements are its own, and their captions and credits.

Written from what a photo *is* on a news page, not from class names (spec §3.2 marks the
markup of captions, credits and galleries [GUESS]):

- A candidate is an ``img`` inside the article root with a usable source that is not page
  furniture: not inside a link to another page (a teaser's thumbnail), nor inside
  ``nav``/``footer``/``form``/scripts, nor inside an ad (an element labelled ``Реклама`` or
  classed as an ad, a banner, share buttons), not a logo (the JSON-LD ``logo``, or "logo" in
  its source or class), not a pixel or an icon (a width or height of 50 or less).
- A *gallery* is a container whose element children are mostly (two thirds or more, three or
  more) slides: children holding exactly one candidate each. It is never the root, the body
  or an element around the headline or the body. Its slides are the article's photos, in
  order.
- Outside a gallery a candidate is the article's when the head names it (``og:image``,
  ``twitter:image``, JSON-LD ``image``: the lead photo), when it stands inside the body text
  (photos between paragraphs), when it stands between the headline and the body with a
  caption, a credit or a ``figure``/``picture`` around it, or anywhere in the root with a
  ``©`` credit. Anything else (an author's portrait in the header, a decoration) is not.
- A photo's *block* is the largest element around the ``img`` that holds nothing but it and
  its caption texts: climbing stops at an element holding another candidate, the headline or
  the body, text beyond caption size, a text before the photo that is not a credit, or a
  second uncredited text after it. A slide's block is its gallery child.
- Caption and credit come from the block's text pieces (cut at block edges and ``<br>``;
  slide counters such as ``3/7`` dropped), split at ``©``; what the block lacks comes from the
  element right after it when that is caption-like (it holds a ``©``, is a ``figcaption``, or is
  a short non-paragraph element); a caption still missing comes from the ``img``'s ``alt`` or
  ``title``. ``caption_from`` records which: ``block``, ``next`` or ``alt``.

Every walk is iterative (lxml's iterators and explicit lists): a page nested a thousand levels
deep is no special case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from lxml.html import HtmlElement

from crawler.pages.tree import (
    SKIP_TAGS,
    classes,
    is_element,
    tag_of,
    text_pieces,
    visible_text,
)
from crawler.text import clean_text

CaptionSource = Literal["block", "next", "alt", ""]
PhotoRole = Literal["slide", "lead", "inline", "credited"]

AD_LABEL = "Реклама"
FURNITURE_CLASS_RE = re.compile(
    r"(?:^|[\s_-])(?:ad|ads|adfox|advert\w*|banner\w*|share\w*|social\w*|subscribe\w*|promo\w*|"
    r"widget\w*)(?:$|[\s_-])",
    re.IGNORECASE,
)
"""Class words of page furniture (ads, share buttons, promotions): generic, not the site's."""
_FURNITURE_TAGS = frozenset({"nav", "footer", "form", "button", "a"}) | SKIP_TAGS
_PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li", "table"}
)
_COUNTER_RE = re.compile(r"^\d+\s*(?:/|of|из)\s*\d+$", re.IGNORECASE)
_IMAGE_FILE_RE = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp|tiff?)(?:$|\?)", re.IGNORECASE)
MAX_BLOCK_TEXT = 400
"""Characters of text a photo's block may hold (its caption and credit)."""
MAX_CAPTION_TEXT = 300
"""Characters of one caption-like element next to a photo."""
MIN_SLIDES = 3


@dataclass(frozen=True, slots=True)
class Photo:
    """One photo of the article: absolute ``url``, ``caption``, ``credit`` (``© …``)."""

    url: str
    caption: str | None
    credit: str | None
    caption_from: CaptionSource
    role: PhotoRole
    img: HtmlElement
    block: HtmlElement
    caption_el: HtmlElement | None


@dataclass(frozen=True, slots=True)
class PhotoScan:
    """The photos of one article root, and the elements they occupy."""

    photos: list[Photo]
    galleries: list[HtmlElement]
    occupied: frozenset[HtmlElement]
    """Every photo block and caption element: not body text."""


def image_src(img: HtmlElement) -> str | None:
    """The image's source: ``src``, a lazy-loading attribute, or the first ``srcset`` entry."""
    for attr in ("src", "data-src", "data-lazy-src", "data-original"):
        value = (img.get(attr) or "").strip()
        if value and not value.startswith("data:") and "{{" not in value:
            return value
    srcset = (img.get("srcset") or img.get("data-srcset") or "").strip()
    if srcset and "{{" not in srcset:
        return srcset.split(",")[0].split()[0]
    return None


def absolute(src: str, base: str) -> str:
    return "https:" + src if src.startswith("//") else urljoin(base, src)


def identity(url: str) -> str:
    """What stays of a photo's URL across its sizes: the last two path segments, lower-case
    (``20261006/21982890.jpg`` of ``…/width/1020_8ec6a781/…/i/20261006/21982890.jpg``)."""
    path = urlsplit(url).path.rstrip("/")
    return "/".join(path.split("/")[-2:]).lower()


def split_credit(text: str) -> tuple[str | None, str | None]:
    """``"A view of Moscow © Ivan Petrov/TASS"`` → (caption, credit); either may be None."""
    text = clean_text(text)
    at = text.find("©")
    if at < 0:
        return (text or None), None
    caption = text[:at].strip(" \u00a0-–—|,;")
    credit = "© " + text[at + 1 :].strip()
    return (caption or None), (credit if credit != "© " else None)


def _tiny(img: HtmlElement) -> bool:
    for attr in ("width", "height"):
        value = str(img.get(attr) or "").strip().removesuffix("px")
        if value.isdigit() and int(value) <= 50:
            return True
    return False


def _ad_labelled(el: HtmlElement) -> bool:
    """An element that carries the ad label itself or in one of its children."""
    if (el.text or "").strip().startswith(AD_LABEL):
        return True
    return any(
        is_element(child) and (child.text or "").strip().startswith(AD_LABEL) for child in el
    )


class _Scanner:
    """One pass over an article root (see the module docstring)."""

    def __init__(
        self,
        root: HtmlElement,
        base: str,
        *,
        headline: HtmlElement | None,
        body: HtmlElement | None,
        named: set[str],
        logos: set[str],
    ) -> None:
        self.root = root
        self.base = base
        self.headline = headline
        self.body = body
        self.named = named
        self.logos = logos
        self._order: dict[object, int] | None = None  # document order, built when first asked
        self.candidates: list[tuple[HtmlElement, str]] = []
        self.count: dict[HtmlElement, int] = {}

    # -- candidates -----------------------------------------------------------------------
    def _furniture(self, img: HtmlElement) -> bool:
        for parent in img.iterancestors():
            if parent is self.root:
                return False
            tag = tag_of(parent)
            if tag in _FURNITURE_TAGS:
                if tag != "a":
                    return True
                href = str(parent.get("href") or "")
                if href and not _IMAGE_FILE_RE.search(href):
                    return True  # a teaser's thumbnail, linking to another page
            if FURNITURE_CLASS_RE.search(classes(parent)) or _ad_labelled(parent):
                return True
        return True  # not inside the root at all

    def _logo(self, img: HtmlElement, url: str) -> bool:
        if url in self.logos:
            return True
        described = f"{url} {classes(img)} {img.get('alt') or ''}".lower()
        return "logo" in described

    def collect(self) -> None:
        for img in self.root.iter("img"):
            if not is_element(img):
                continue
            src = image_src(img)
            if src is None or _tiny(img) or self._furniture(img):
                continue
            url = absolute(src, self.base)
            if self._logo(img, url):
                continue
            self.candidates.append((img, url))
            for parent in img.iterancestors():
                self.count[parent] = self.count.get(parent, 0) + 1
                if parent is self.root:
                    break

    # -- galleries ------------------------------------------------------------------------
    def galleries(self) -> dict[HtmlElement, HtmlElement]:
        """Slide → its gallery container."""
        slides: dict[HtmlElement, HtmlElement] = {}
        seen: set[HtmlElement] = set()
        for img, _url in self.candidates:
            for parent in img.iterancestors():
                if parent is self.root:
                    break  # the root, holding the header and the body, is no gallery
                if parent in seen or self.count.get(parent, 0) < MIN_SLIDES:
                    continue
                seen.add(parent)
                if self._stop(parent):
                    continue
                held = [self._holding(child) for child in parent if is_element(child)]
                content = [n for n in held if n is not None]
                ones = [n for n in content if n == 1]
                if len(ones) >= MIN_SLIDES and 3 * len(ones) >= 2 * len(content):
                    for child in parent:
                        if is_element(child) and self._holding(child) == 1:
                            slides[child] = parent
        return slides

    def _holding(self, child: HtmlElement) -> int | None:
        """Candidates inside ``child`` (an ``img`` counts itself); None for an element with
        neither photos nor text (a button, an empty spacer)."""
        tag = tag_of(child)
        if tag in SKIP_TAGS:
            return None
        if tag == "img":
            return 1 if any(img is child for img, _u in self.candidates) else None
        held = self.count.get(child, 0)
        if held:
            return held
        return 0 if visible_text(child) else None

    # -- blocks and captions --------------------------------------------------------------
    def _stop(self, el: HtmlElement) -> bool:
        if el is self.root or el is self.body:
            return True
        if self.headline is not None and (
            el is self.headline or any(a is el for a in self.headline.iterancestors())
        ):
            return True
        return self.body is not None and any(a is el for a in self.body.iterancestors())

    def _photo_only(self, parent: HtmlElement, branch: HtmlElement) -> bool:
        """Whether ``parent`` holds only the photo ``branch`` and caption texts."""
        text = visible_text(parent)
        if len(text) > MAX_BLOCK_TEXT:
            return False
        credited = "©" in text or tag_of(parent) in ("figure", "picture")
        after = False
        uncredited_after = 0
        for child in parent:
            if child is branch:
                after = True
                continue
            if not is_element(child) or tag_of(child) in SKIP_TAGS:
                continue
            child_text = visible_text(child)
            if not child_text:
                continue
            if not after:
                if "©" not in child_text:
                    return False  # text before the photo that is not its credit
                continue
            if "©" in child_text:
                continue
            uncredited_after += 1
            if uncredited_after > 1 or not credited or len(child_text) > MAX_CAPTION_TEXT:
                return False
        return True

    def block_of(self, img: HtmlElement) -> HtmlElement:
        """The largest element around ``img`` that holds only it and its caption texts."""
        block = img
        for parent in img.iterancestors():
            if self._stop(parent) or self.count.get(parent, 0) != 1:
                return block
            if not self._photo_only(parent, block):
                return block
            block = parent
        return block

    def _caption_like(self, el: HtmlElement, loose: bool) -> bool:
        """Whether ``el`` (right after a photo's block) is its caption: it holds a ``©`` or is
        a ``figcaption``; or, when ``loose`` (the block is a wrapper still missing its
        caption), a short element that is no paragraph, holds none and links nowhere."""
        if self._stop(el) or self.count.get(el, 0) or tag_of(el) in SKIP_TAGS:
            return False
        text = visible_text(el)
        if not text or len(text) > MAX_CAPTION_TEXT:
            return False
        if "©" in text or tag_of(el) == "figcaption":
            return True
        if not loose or tag_of(el) in _PARAGRAPH_TAGS or el.xpath(".//a[@href]"):
            return False
        return not any(tag_of(d) in _PARAGRAPH_TAGS for d in el.iterdescendants())

    def caption_of(
        self, img: HtmlElement, block: HtmlElement, slide: bool
    ) -> tuple[str | None, str | None, CaptionSource, HtmlElement | None]:
        caption, credit = _from_pieces(text_pieces(block) if block is not img else [])
        source: CaptionSource = "block" if caption else ""
        used: HtmlElement | None = None
        if (caption is None or credit is None) and not slide:
            sibling = block.getnext()
            while sibling is not None and not is_element(sibling):
                sibling = sibling.getnext()
            loose = caption is None and block is not img
            if sibling is not None and self._caption_like(sibling, loose):
                more_caption, more_credit = _from_pieces(text_pieces(sibling))
                if caption is None and more_caption:
                    caption, source, used = more_caption, "next", sibling
                if credit is None and more_credit:
                    credit, used = more_credit, sibling
        if caption is None:
            described = clean_text(img.get("alt") or img.get("title") or "")
            alt_caption, alt_credit = split_credit(described)
            if alt_caption:
                caption, source = alt_caption, "alt"
            credit = credit or alt_credit
        return caption, credit, source, used

    # -- roles ----------------------------------------------------------------------------
    @property
    def order(self) -> dict[object, int]:
        """Each node's position in document order (only photos placed against the headline or
        the body need it)."""
        if self._order is None:
            self._order = {node: position for position, node in enumerate(self.root.iter())}
        return self._order

    def _after_headline(self, el: HtmlElement) -> bool:
        if self.headline is None:
            return True
        return self.order.get(el, 0) > self.order.get(self.headline, 0)

    def _before_body(self, el: HtmlElement) -> bool:
        if self.body is None:
            return True
        return self.order.get(el, 0) < self.order.get(self.body, 0)

    def scan(self) -> PhotoScan:
        self.collect()
        slide_of = self.galleries()
        photos: list[Photo] = []
        occupied: set[HtmlElement] = set()
        seen: set[str] = set()
        for img, url in self.candidates:
            slide = _slide_of(img, slide_of)
            block = slide if slide is not None else self.block_of(img)
            caption, credit, source, used = self.caption_of(img, block, slide is not None)
            role = self._role(
                img, url, block, slide=slide is not None, caption_from=source, credit=credit
            )
            if role is None:
                continue
            occupied.add(block)
            occupied.add(img)
            if used is not None:
                occupied.add(used)
            key = identity(url)
            if key in seen:
                continue
            seen.add(key)
            photos.append(Photo(url, caption, credit, source, role, img, block, used))
        galleries: list[HtmlElement] = []
        for container in slide_of.values():
            if all(container is not g for g in galleries):
                galleries.append(container)
        return PhotoScan(photos, galleries, frozenset(occupied))

    def _role(
        self,
        img: HtmlElement,
        url: str,
        block: HtmlElement,
        *,
        slide: bool,
        caption_from: CaptionSource,
        credit: str | None,
    ) -> PhotoRole | None:
        if slide:
            return "slide"
        if identity(url) in self.named:
            return "lead"
        if self.body is not None and any(a is self.body for a in img.iterancestors()):
            return "inline"
        framed = any(tag_of(a) in ("figure", "picture") for a in _upto(img, block))
        # An alt text alone is no caption here: a portrait beside an author's name has one.
        shown = caption_from in ("block", "next") or credit is not None or framed
        if self._after_headline(img) and self._before_body(img) and shown:
            return "lead"
        if credit:
            return "credited"
        return None


def _slide_of(img: HtmlElement, slide_of: dict[HtmlElement, HtmlElement]) -> HtmlElement | None:
    """The gallery slide holding ``img`` (``img`` itself when it is one), or None."""
    if img in slide_of:
        return img
    for parent in img.iterancestors():
        if parent in slide_of:
            return parent
    return None


def _upto(img: HtmlElement, block: HtmlElement) -> Iterable[HtmlElement]:
    yield img
    if block is img:
        return
    for parent in img.iterancestors():
        yield parent
        if parent is block:
            return


def _from_pieces(pieces: list[str]) -> tuple[str | None, str | None]:
    """Caption and credit from text pieces: counters dropped, each piece split at ``©``."""
    captions: list[str] = []
    credit: str | None = None
    for piece in pieces:
        if _COUNTER_RE.match(piece):
            continue
        caption, found = split_credit(piece)
        if caption:
            captions.append(caption)
        if found and credit is None:
            credit = found
    return (" ".join(captions) or None), credit


def scan_photos(
    root: HtmlElement,
    base: str,
    *,
    headline: HtmlElement | None,
    body: HtmlElement | None,
    named: Iterable[str] = (),
    logos: Iterable[str] = (),
) -> PhotoScan:
    """The photos of the article ``root`` (see the module docstring). ``named`` are the photo
    URLs the page's head names, ``logos`` the URLs of the site's logos."""
    scanner = _Scanner(
        root,
        base,
        headline=headline,
        body=body,
        named={identity(u) for u in named},
        logos={absolute(u, base) for u in logos},
    )
    return scanner.scan()
