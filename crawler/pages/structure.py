"""Structural rules: fields read from where things stand on an article page, not their classes.

- ``mark_by_structure``: the theme label is the short text (or link) placed between the top of
  the article's header and its headline. Walking back from the headline, date lines (a
  ``dateformat``/``time`` element, a "last update" label beside one, a date-shaped text) are
  passed over; the first other text is the label if it is short (at most ``MAX_MARK_CHARS``
  characters and ``MAX_MARK_WORDS`` words), names no section, links to no article or section
  page, and is not a byline (a text with "by" or an author's portrait beside it). Anything else
  there means the article has no label.
- ``mark_by_class``: the last-resort guess, an element before the headline whose class names a
  ``mark`` or a ``label``.
- ``body_container``: where ``div.text-content`` is missing, the element of the root with the
  most paragraph text among its children, leaving out the header (everything up to the
  headline), the lead, photos and their captions.
- ``tags_by_structure``: the texts of the links to tag and theme pages after the headline and
  outside the body, in the first container that holds such links.
- ``is_body_opening``: a description (``og:description`` and the like) that merely repeats the
  opening of the body, with or without the dateline, whole or cut with an ellipsis: sites fill
  it from the body when an article has no standfirst, so it is no lead.

All walks are iterative.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from lxml.html import HtmlElement

from crawler.pages.tree import (
    SKIP_TAGS,
    before,
    classes,
    is_element,
    own_text,
    tag_of,
    visible_text,
    words,
)
from crawler.text import SECTION_NAMES
from crawler.urls import SiteUrls

MAX_MARK_CHARS = 80
MAX_MARK_WORDS = 12
MIN_BODY_CHARS = 80
"""The least paragraph text a structural body container must hold."""
MARK_CLASS_RE = re.compile(r"(?:^|[\s_-])(?:mark|marks|label)(?:$|[\s_-])", re.IGNORECASE)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DATE_RE = re.compile(
    rf"\b\d{{1,2}}:\d{{2}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b(?:{_MONTHS})\s+\d{{1,2}}\b"
    rf"|\b\d{{1,2}}\s+(?:{_MONTHS})\b",
    re.IGNORECASE,
)
_BYLINE_RE = re.compile(r"\b(?:by|author|columnist|interviewed|opinion)\b", re.IGNORECASE)
_DATE_TAGS = frozenset({"dateformat", "time"})
_BODY_TAGS = frozenset({"p", "h2", "h3", "h4", "blockquote"})
_DOTS_RE = re.compile(r"(?:\.\.\.|…)\s*$")


def header_scope(root: HtmlElement, headline: HtmlElement) -> HtmlElement:
    """The part of ``root`` that holds the headline's header: the root's child around it."""
    scope = headline
    for parent in headline.iterancestors():
        if parent is root:
            return scope
        scope = parent
    return root


def _date_line(el: HtmlElement, scope: HtmlElement) -> bool:
    if tag_of(el) in _DATE_TAGS or any(tag_of(d) in _DATE_TAGS for d in el.iterdescendants()):
        return True
    for parent in el.iterancestors():
        if parent is scope:
            break
        if tag_of(parent) in _DATE_TAGS:
            return True
    return bool(_DATE_RE.search(visible_text(el)))


def _label_element(el: HtmlElement, scope: HtmlElement) -> HtmlElement:
    """The link around ``el`` if there is one inside ``scope``, else ``el``."""
    for parent in el.iterancestors():
        if parent is scope:
            break
        if tag_of(parent) == "a":
            return parent
    return el


def _holder(el: HtmlElement, scope: HtmlElement) -> HtmlElement:
    """The nearest block-level element around ``el`` (at most ``scope``)."""
    for parent in el.iterancestors():
        if parent is scope or tag_of(parent) in ("div", "p", "section", "header", "li", "aside"):
            return parent
    return scope


def _label_ok(
    label: HtmlElement,
    text: str,
    *,
    scope: HtmlElement,
    headline: HtmlElement,
    urls: SiteUrls,
    base: str,
) -> bool:
    if len(text) > MAX_MARK_CHARS or words(text) > MAX_MARK_WORDS:
        return False
    if text.casefold() in SECTION_NAMES:
        return False
    href = label.get("href") if tag_of(label) == "a" else None
    if href:
        target = urls.canonical(str(href), base)
        if target is not None and urls.url_kind(target) in ("article", "section", "home"):
            return False
    holder = _holder(label, scope)
    if any(a is holder for a in headline.iterancestors()):
        return True  # the label stands in the header itself: nothing around it to judge
    around = visible_text(holder)
    return not (holder.xpath(".//img") or (around != text and _BYLINE_RE.search(around)))


def mark_by_structure(
    root: HtmlElement, headline: HtmlElement | None, urls: SiteUrls, base: str
) -> str | None:
    """The theme label between the header's top and the headline (module docstring)."""
    if headline is None:
        return None
    scope = header_scope(root, headline)
    for el in before(headline, scope):
        if tag_of(el) in SKIP_TAGS or any(tag_of(a) in SKIP_TAGS for a in _upto(el, scope)):
            continue
        if not own_text(el):
            continue
        if _date_line(el, scope):
            continue
        label = _label_element(el, scope)
        text = visible_text(label)
        ok = _label_ok(label, text, scope=scope, headline=headline, urls=urls, base=base)
        return text if ok else None
    return None


def _upto(el: HtmlElement, scope: HtmlElement) -> Iterable[HtmlElement]:
    for parent in el.iterancestors():
        if parent is scope:
            return
        yield parent


def mark_by_class(root: HtmlElement, headline: HtmlElement | None) -> str | None:
    """The first element before the headline whose class names a mark or a label."""
    if headline is None:
        return None
    for el in root.iter():
        if el is headline:
            break
        if is_element(el) and MARK_CLASS_RE.search(classes(el)):
            text = visible_text(el)
            if text and len(text) <= 120:
                return text
    return None


def _walk_skipping(root: HtmlElement, skip: Callable[[HtmlElement], bool]) -> list[HtmlElement]:
    """Every element of ``root`` in document order, not descending into skipped ones."""
    out: list[HtmlElement] = []
    stack = [root]
    while stack:
        el = stack.pop()
        if not is_element(el) or skip(el):
            continue
        out.append(el)
        stack.extend(reversed([c for c in el if is_element(c)]))
    return out


def body_container(
    root: HtmlElement,
    headline: HtmlElement | None,
    excluded: set[HtmlElement],
    is_paragraph: Callable[[HtmlElement, str], bool],
) -> HtmlElement | None:
    """The root's element with the most paragraph text among its children (module
    docstring); ``excluded`` are elements that are not body (lead, photos),
    ``is_paragraph(el, text)`` tells body paragraphs from furniture."""
    skipped = set(excluded)
    if headline is not None:
        skipped.add(headline)
        skipped |= set(before(headline, root))
    best: HtmlElement | None = None
    best_score = 0
    for el in _walk_skipping(root, lambda e: e in skipped or tag_of(e) in SKIP_TAGS):
        score = 0
        for child in el:
            if not is_element(child) or child in skipped or tag_of(child) not in _BODY_TAGS:
                continue
            text = visible_text(child)
            if is_paragraph(child, text):
                score += len(text)
        if score > best_score:
            best, best_score = el, score
    return best if best_score >= MIN_BODY_CHARS else None


def tags_by_structure(
    root: HtmlElement,
    headline: HtmlElement | None,
    body: HtmlElement | None,
    urls: SiteUrls,
    base: str,
) -> list[str]:
    """Texts of the first group of tag and theme links after the headline, outside the body."""
    seen_headline = headline is None
    group: HtmlElement | None = None
    found: list[str] = []
    # Links and the headline alone, in document order (lxml's tag filter, in C; the HTML
    # parser gives lower-case tags).
    wanted = ("a",) if headline is None else ("a", headline.tag)
    for el in root.iter(*wanted):
        if el is headline:
            seen_headline = True
            continue
        if not seen_headline or el.tag != "a" or not el.get("href"):
            continue
        if body is not None and any(a is body for a in el.iterancestors()):
            continue
        target = urls.canonical(str(el.get("href")), base)
        if target is None or urls.url_kind(target) != "theme_or_tag":
            continue
        parent = el.getparent()
        if group is None:
            group = parent
        elif parent is not group:
            continue
        text = visible_text(el)
        if text:
            found.append(text)
    return found


def is_body_opening(description: str, paragraphs: list[str], dateline_end: int) -> bool:
    """Whether ``description`` only repeats the body's opening (module docstring);
    ``dateline_end`` is where the first paragraph's dateline ends (0: none)."""
    if not paragraphs:
        return False
    stem = _DOTS_RE.sub("", description).strip().rstrip(" .,;:").casefold()
    if len(stem) < 20:
        return False
    body = " ".join(paragraphs).casefold()
    return body.startswith(stem) or body[dateline_end:].lstrip().startswith(stem)
