"""The compact form of a plain article request in the queue (``lua.enqueue``).

A backfill queues about a million article requests, one per sitemap entry. Each one is a
*plain* article request: its member is ``TassSpider.article_request``'s, with nothing in it
that the article id, the section and the priority do not give back (no sighting, no hint, no
retry, no redirect, no ``dont_filter``). A sorted-set entry costs Redis ~70 bytes before its
member (~150 bytes of JSON), so instead of a member of ``pending`` such a request is a bit:
bit N of ``pending:plain:ids:<priority>`` is set while article N waits at that priority, and
its section is a 4-bit code at ``#N`` of ``pending:plain:sections`` (3.4 bytes a request at
10^6, against 223 as members: BENCHMARKS.md). POP turns the bit back into the very member it
came from, byte for byte, as it leases it; from there on (leases, acks, hand-backs, dead
letters) it is an ordinary member.

The scripts recognise a plain member by matching it against the form's template (and building
it again from what matched: the same bytes or it stays an ordinary member), so every way into
the queue (a push, a reaped lease, a hand-back, a due retry) stores the same request the same
way, and nothing a worker sends needs to say which requests are plain. The form (sections and
template) is written beside the bits by the FLUSH that queues the first of them, and a
request is stored as bits only under the form already there: a worker with another form (say
another ``TASS_BASE_URL``) queues ordinary members until the bits are gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from crawler.urls import SECTIONS, SiteUrls

MAX_ID = 2**24 - 1
"""Article ids above this are queued as ordinary members (a bitmap's size follows its largest
id: 2 MB at this bound; the site's ids are near 2.2 million)."""

_ID, _SECTION, _PRIORITY = "\x01", "\x02", "\x03"


@dataclass(frozen=True, slots=True)
class PlainForm:
    """The plain article request of one site root: the member template and section codes."""

    base: str = "https://tass.com"
    sections: tuple[str, ...] = tuple(SECTIONS)
    """Section slugs; a code is the index + 1 (4 bits: at most 15)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", SiteUrls(self.base).base)
        if not 0 < len(self.sections) <= 15 or any("," in s for s in self.sections):
            raise ValueError(f"plain form: 1 to 15 section slugs without ',': {self.sections}")

    @property
    def template(self) -> str:
        """The member of ``TassSpider.article_request`` (``codec.encode_request``'s compact
        sorted JSON) with markers for the id (twice), the priority and the section."""
        text = json.dumps(
            {
                "callback": "parse_article",
                "errback": "on_error",
                "meta": {"article_id": "@id@", "kind": "article"},
                "priority": "@priority@",
                "url": f"{self.base}/@section@/@id@",
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        text = text.replace('"@id@"', "@id@").replace('"@priority@"', _PRIORITY)
        return text.replace("@id@", _ID).replace("@section@", _SECTION)

    def wire(self) -> str:
        """What the scripts are given: the section slugs (comma-separated), a newline, the
        template (``lua.plain_form`` parses it)."""
        return ",".join(self.sections) + "\n" + self.template

    def member(self, article_id: int, section: str, priority: int) -> bytes:
        """The member of a plain request (what POP rebuilds)."""
        text = self.template.replace(_ID, str(article_id)).replace(_PRIORITY, str(priority))
        return text.replace(_SECTION, section).encode()
