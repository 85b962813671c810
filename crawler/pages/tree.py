"""Walking an lxml tree without recursion: visible text, text pieces, elements in order.

Every walker here keeps its own stack, so a page nested thousands of levels deep costs time in
proportion to its size and never raises ``RecursionError``. The page objects (``article``,
``photos``, ``structure``) read the tree only through these helpers and lxml's own iterators
(``iter``, ``iterancestors``, ``itersiblings``), which are iterative too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from cssselect import parse
from cssselect.parser import Class, Element, Hash
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from parsel import Selector
from parsel.csstranslator import HTMLTranslator
from parsel.selector import create_root_node

from crawler.text import clean_text

SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "button", "iframe", "svg", "form", "input"}
)
"""Elements whose content is never text of the page (their tail is)."""

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
        "picture",
    }
)
"""Block-level tags: their edges separate words (``<br>`` too)."""

_PIECE_BREAK = "\n"


_CSS = HTMLTranslator()


class _HtmlParser(etree.HTMLParser):
    """lxml.html's parser, with every element an ``HtmlElement`` chosen in C: lxml.html's own
    class lookup is a Python call each time lxml wraps an element (~200 a page here), for
    form-field classes no page object uses."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement,
                comment=HtmlComment,
                pi=HtmlProcessingInstruction,
                entity=HtmlEntity,
            )
        )


_MARKUP = re.compile(r"[\s\ufeff]*<(?!\?xml\s)")
"""Text that parsel would parse as HTML: markup without an XML declaration (never JSON)."""


def html_selector(text: str) -> Selector:
    """``Selector(text=text)``, the tree built by ``_HtmlParser``: parsel's own preparation of
    the text (``create_root_node``), the same tree; what is not HTML markup goes to parsel as
    it is (it decides between JSON, XML and HTML, as before)."""
    if not _MARKUP.match(text):
        return Selector(text=text)
    return Selector(root=create_root_node(text, _HtmlParser), type="html")


@cache
def _compiled(query: str) -> etree.XPath:
    return etree.XPath(query)


def select(el: HtmlElement, css: str) -> list[HtmlElement]:
    """The elements under (and including) ``el`` that CSS selector ``css`` matches, in document
    order: what parsel's ``Selector(root=el).css(css)`` finds (the same translation to XPath),
    through an XPath compiled once instead of at every call, without a Selector per result."""
    return list(iselect(el, css))


def iselect(el: HtmlElement, css: str) -> Iterator[HtmlElement]:
    """``select``'s elements one at a time. A group of ``#id`` and ``.class`` selectors alone
    (the page objects' article root and lead) is tested in Python element by element
    (``_tester``), so a caller that stops at the first match pays only for the elements before
    it; libxml2 spends about a microsecond an element on such a group's predicate. Any other
    selector is its compiled XPath's result."""
    test = _tester(css)
    if test is None:
        yield from elements(_selector(css)(el))
        return
    for node in el.iter(etree.Element):  # elements only: no comments, entities or PIs
        if test(node):
            yield node


_XPATH_SPACE = "[ \t\r\n]"
"""What XPath's ``normalize-space`` counts as space, which cssselect's class test splits on
(not Python's ``str.split``: a no-break space is part of a class name there)."""


@cache
def _tester(css: str) -> Callable[[HtmlElement], bool] | None:
    """A test of one element for a group of ``#id`` and ``.class`` selectors on any element
    (cssselect's ``@id = 'x'`` and ``contains(concat(' ', normalize-space(@class), ' '),
    ' x ')``), or None for any other selector."""
    ids: set[str] = set()
    names: list[str] = []
    for selector in parse(css):
        tree = selector.parsed_tree
        if selector.pseudo_element or not isinstance(tree, Hash | Class):
            return None
        if not isinstance(tree.selector, Element) or tree.selector.element is not None:
            return None  # a tag (div.x), or a class of a class (.a.b)
        if tree.selector.namespace is not None:
            return None
        if isinstance(tree, Hash):
            ids.add(tree.id)
        else:
            names.append(tree.class_name)
    token = re.compile(
        f"(?:^|{_XPATH_SPACE})(?:{'|'.join(map(re.escape, names))})(?:{_XPATH_SPACE}|$)"
    )

    def test(el: HtmlElement) -> bool:
        if el.get("id") in ids:
            return True
        found = el.get("class")
        return bool(names) and found is not None and token.search(found) is not None

    return test


@cache
def _selector(css: str) -> etree.XPath:
    """``css`` as one compiled XPath. A group of selectors that each test one element alone
    (``[class=lead], .newsy``; a group of ``#id`` and ``.class`` alone is ``iselect``'s Python
    test) becomes one walk whose predicate is any of theirs, instead of a union of one walk of
    the tree each: the same elements in the same (document) order."""
    group = parse(css)
    exprs = [_CSS.xpath(selector.parsed_tree) for selector in group]
    simple = all(e.path == "" and e.element == "*" and e.condition for e in exprs)
    if len(exprs) > 1 and simple and not any(selector.pseudo_element for selector in group):
        conditions = " or ".join(f"({e.condition})" for e in exprs)
        return etree.XPath(f"descendant-or-self::*[{conditions}]")
    return _compiled(_CSS.css_to_xpath(css))


def xpath(el: HtmlElement, query: str) -> Any:
    """``el.xpath(query)`` through an XPath compiled once (the result as lxml gives it)."""
    return _compiled(query)(el)


def elements(found: Any) -> list[HtmlElement]:
    """The elements of an XPath result (dropping strings, comments and the like)."""
    if not isinstance(found, list):
        return []
    return [e for e in found if is_element(e)]


def is_element(node: Any) -> bool:
    """An element (not a comment, processing instruction or entity)."""
    return isinstance(node, HtmlElement) and isinstance(node.tag, str)


def tag_of(node: Any) -> str:
    """The lower-case tag name, or ``""`` for comments and the like."""
    tag = getattr(node, "tag", None)
    return tag.lower() if isinstance(tag, str) else ""


def classes(el: HtmlElement) -> str:
    return str(el.get("class") or "")


def has_class(el: HtmlElement, token: str) -> bool:
    return token in classes(el).split()


def _joined(el: HtmlElement, block_break: str) -> str:
    """The raw visible text of ``el``: block edges become ``block_break``.

    An element without children (most of the page objects' calls: a paragraph, a link, a
    caption) is answered without the walk."""
    tag = el.tag
    if not isinstance(tag, str) or (tag := tag.lower()) in SKIP_TAGS:
        return ""  # a comment or the like, a skipped element: only its tail counts, outside
    outer = block_break if tag in SPACED_TAGS else ""  # the break at el's own edges
    if not len(el):
        return f"{outer}{el.text or ''}{outer}"
    parts = [outer, el.text or ""]
    # (node, closing break): an element below ``el`` is visited on the way in (None), then
    # once more on the way out with the break its edge makes ("" for an inline element).
    stack: list[tuple[Any, str | None]] = [(child, None) for child in reversed(el)]
    append = parts.append
    while stack:
        node, closing = stack.pop()
        if closing is not None:
            if closing:
                append(closing)
            if node.tail:
                append(node.tail)
            continue
        tag = node.tag
        if not isinstance(tag, str) or (tag := tag.lower()) in SKIP_TAGS:
            # Comments, processing instructions and skipped elements: only their tail counts.
            if node.tail:
                append(node.tail)
            continue
        edge = block_break if tag in SPACED_TAGS else ""
        if edge:
            append(edge)
        if node.text:
            append(node.text)
        stack.append((node, edge))
        stack.extend((child, None) for child in reversed(node))
    append(outer)
    return "".join(parts)


def visible_text(el: HtmlElement) -> str:
    """The visible text of ``el``: no scripts/styles/comments, ``<br>`` as a space, clean."""
    return clean_text(_joined(el, " "))


def text_pieces(el: HtmlElement) -> list[str]:
    """The visible text of ``el`` cut at block edges and ``<br>``: ``"caption<br>© credit"``
    and ``<p>caption</p><p>© credit</p>`` give two pieces, inline markup none."""
    raw = _joined(el, _PIECE_BREAK)
    return [piece for piece in (clean_text(p) for p in raw.split(_PIECE_BREAK)) if piece]


def own_text(el: HtmlElement) -> str:
    """The text directly inside ``el`` (its ``text`` and its children's tails), clean."""
    parts = [el.text or ""]
    parts += [child.tail or "" for child in el]
    return clean_text(" ".join(parts))


def inside(el: HtmlElement, ancestor: HtmlElement) -> bool:
    return any(parent is ancestor for parent in el.iterancestors())


def ancestors_until(el: HtmlElement, stop: HtmlElement | None) -> Iterator[HtmlElement]:
    """The ancestors of ``el``, nearest first, up to (not including) ``stop``."""
    for parent in el.iterancestors():
        if parent is stop:
            return
        yield parent


def anchors(el: HtmlElement) -> list[HtmlElement]:
    return elements(el.xpath(".//a[@href]"))


def before(mark: HtmlElement, scope: HtmlElement) -> Iterator[HtmlElement]:
    """The elements of ``scope`` that come before ``mark`` in document order and do not contain
    it, nearest first."""
    ordered: list[HtmlElement] = []
    for node in scope.iter():
        if node is mark:
            break
        if is_element(node) and node is not scope:
            ordered.append(node)
    containing = set(mark.iterancestors())
    for node in reversed(ordered):
        if node not in containing:
            yield node


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))
