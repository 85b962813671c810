"""Hub pages: the home page, section pages, theme pages and tag listings → links.

A section or theme page is an AngularJS app whose list is filled from the listing API; its id
sits in ``.section-page[ng-init]`` (``sectionId = 4953;``, spec §3.1). Whatever the server
renders is read too: ``a.news-preview`` items, ``a.theme-item`` cards, the nav and tag links.
Links are canonical, deduplicated and in page order; Angular templates (``{{item.link}}``)
are ignored.
"""

from __future__ import annotations

import re

from parsel import Selector

from crawler.text import decode_html
from crawler.urls import SiteUrls

SECTION_ID_RE = re.compile(r"""\bsectionId\s*[:=]\s*["']?(\d+)""")
HUB_KINDS = frozenset({"section", "theme_or_tag", "home"})


class HubPage:
    """A home, section, theme or tag page."""

    def __init__(
        self, url: str, html: str | bytes, urls: SiteUrls, encoding: str | None = None
    ) -> None:
        self.url = url
        self.urls = urls
        self.sel = Selector(text=decode_html(html, encoding))

    def section_id(self) -> int | None:
        """The listing API id of this section or theme page, or None (home, tag pages)."""
        sources = self.sel.css(".section-page::attr(ng-init)").getall()
        sources += self.sel.xpath("//@ng-init | //@data-ng-init").getall()
        for source in sources:
            match = SECTION_ID_RE.search(source)
            if match:
                return int(match.group(1))
        return None

    def _hrefs(self) -> list[str]:
        return [
            href
            for href in self.sel.xpath("//a/@href").getall()
            if href.strip() and "{{" not in href
        ]

    def _canonical(self, kinds: frozenset[str]) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        for href in self._hrefs():
            url = self.urls.canonical(href, self.url)
            if url is None or url in seen or self.urls.url_kind(url) not in kinds:
                continue
            seen.add(url)
            out.append(url)
        return out

    def article_links(self) -> list[str]:
        """Canonical article URLs linked from the page, in page order."""
        return self._canonical(frozenset({"article"}))

    def hub_links(self) -> list[str]:
        """Canonical section, theme and tag page URLs linked from the page (not this page)."""
        own = self.urls.canonical(self.url)
        return [u for u in self._canonical(HUB_KINDS - {"home"}) if u != own]
