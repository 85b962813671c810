"""Ground truth: what a perfect crawler and extractor would produce from the site at one day.

Text is NFC with single spaces. ``body`` holds every paragraph, subhead (``h2``), blockquote and
interview question in page order, the dateline included in the first paragraph; it leaves out
"Read also" blocks, captions, credits and ads. ``related`` lists the "Read also" targets in page
order with the headline as linked (the target's first-version headline). Body, dateline, images
and related are what the current markup shows (``Renderer.content``): the alternative markup
adds photos inside the text and shows some galleries without an intro.
"""

from __future__ import annotations

from typing import Any

from replica.config import SECTIONS, THEMES
from replica.corpus import iso_utc
from replica.hostile import HostileSet
from replica.render import Renderer


def build_truth(renderer: Renderer, hostile: HostileSet | None) -> dict[str, Any]:
    state = renderer.state
    base = renderer.base
    articles = []
    for a in state.articles:
        i = a.index
        content = renderer.content(i)
        related = [
            {"id": t.id, "url": base + t.path, "title": t.title0}
            for ra in content.related
            for t in (state.articles[j] for j in ra.targets)
        ]
        dup = state.articles[a.duplicate_of].id if a.duplicate_of is not None else None
        articles.append(
            {
                "id": a.id,
                "path": a.path,
                "url": base + a.path,
                "section": a.prefix,
                "home_section": a.home,
                "kind": a.kind,
                "title": state.titles[i],
                "lead": a.lead,
                "body": [value for _kind, value in content.blocks],
                "dateline": content.dateline,
                "published_at": iso_utc(a.published),
                "modified_at": iso_utc(state.modified[i]),
                "tags": [t.text for t in a.tags],
                "mark": a.mark,
                "images": [
                    {"url": img.url, "caption": img.caption, "credit": img.credit}
                    for img in content.images
                ],
                "related": related,
                "duplicate_of": dup,
                "reachable": not a.orphan,
                "revision": state.revision[i],
                "feeds": list(a.feeds),
            }
        )
    hostile_list = []
    if hostile is not None:
        hostile_list = [
            {"url": base + e.path, "path": e.path, "kind": e.kind, "expect": e.expect, "why": e.why}
            for e in hostile.entries
        ]
    return {
        "base_url": base,
        "day": state.day,
        "now": iso_utc(state.now),
        "articles": articles,
        "hostile": hostile_list,
        "sections": {slug: sid for slug, (sid, _name) in SECTIONS.items()},
        "themes": {slug: tid for slug, (tid, _n, _h) in THEMES.items()},
    }
