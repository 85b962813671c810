"""Canonical URLs of tass.com (or of a replica of it) and what kind of page each one is.

``SiteUrls(base)`` is the one place that knows the site's URL shapes (spec §1): it makes any
link found on a page canonical (the base's scheme and host, no query, no fragment, no trailing
slash, ``/sport/<id>`` → ``/sports/<id>``), tells article URLs from hubs and feeds, and builds
the fixed endpoints (listing API, RSS, sitemap index, robots). It is pure: no requests, no
settings. The base is ``https://tass.com`` for the real site or ``http://127.0.0.1:<port>`` for
the replica; links to other hosts are out of scope (``None``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

UrlKind = Literal["article", "section", "theme_or_tag", "api", "rss", "sitemap", "home", "other"]

SECTIONS: dict[str, int] = {
    "politics": 4954,
    "world": 4844,
    "economy": 4845,
    "defense": 4953,
    "science": 4957,
    "emergencies": 4992,
    "society": 4956,
    "pressreview": 4981,
    "sports": 4869,
}
"""Section slug → the listing API's ``sectionId`` (spec §2)."""

SECTION_ALIASES: dict[str, str] = {"sport": "sports"}
"""Old section slugs → the current one (``/sport/<id>`` was used until 2022)."""

KNOWN_PREFIXES: frozenset[str] = frozenset({"russia", "news-index"})
"""First segments of article paths that are neither a section nor (known to be) a theme."""

RESERVED_SEGMENTS: frozenset[str] = frozenset(
    {
        "today",
        "search",
        "preview",
        "rss",
        "sitemap",
        "sitemap.xml",
        "robots.txt",
        "userapi",
        "__replica__",
        "archive",
        "tag",
        "tags",
        "static",
        "api",
        "favicon.ico",
    }
)
"""First segments (lower-cased) that are never a section, a theme or an article prefix."""

TAG_PREFIXES: frozenset[str] = frozenset({"tag", "tags"})
"""``/<prefix>/<slug>`` is a tag listing (shape [GUESS])."""

STATIC_EXTENSIONS: frozenset[str] = frozenset(
    {
        "jpg",
        "jpeg",
        "png",
        "gif",
        "webp",
        "svg",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "avif",
        "css",
        "js",
        "mjs",
        "map",
        "json",
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "zip",
        "gz",
        "rar",
        "7z",
        "mp3",
        "mp4",
        "m4a",
        "wav",
        "ogg",
        "webm",
        "avi",
        "mov",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "swf",
        "exe",
        "apk",
    }
)
"""File extensions of the last path segment that mark a static file (never crawled)."""

ARTICLE_PATH_RE = re.compile(r"^/([a-z-]+)/(\d+)$")
"""An article's canonical path (spec §1)."""
_LOOSE_ARTICLE_RE = re.compile(r"^/([A-Za-z-]+)/(\d+)$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class SiteUrls:
    """URL rules for one site root: ``SiteUrls("https://tass.com")``."""

    base: str
    """Scheme and authority of the site root, e.g. ``https://tass.com``; a path is ignored."""
    scheme: str = field(init=False)
    netloc: str = field(init=False)
    host: str = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"base must be an absolute http(s) URL, got {self.base!r}")
        host = parts.hostname.lower()
        port = parts.port or _DEFAULT_PORTS[scheme]
        netloc = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "netloc", netloc)
        object.__setattr__(self, "base", f"{scheme}://{netloc}")

    # -- making URLs canonical -------------------------------------------------------------

    def _host_ok(self, host: str, scheme: str, port: int | None) -> bool:
        bare = self.host.removeprefix("www.")
        if host not in (bare, f"www.{bare}"):
            return False
        if self.port == _DEFAULT_PORTS[self.scheme]:
            # The real site: any scheme on its default port.
            return port is None or port == _DEFAULT_PORTS[scheme]
        return port == self.port

    def on_site(self, url: str) -> bool:
        """Whether the absolute URL ``url`` is on the site: an http(s) URL of its host (or
        ``www.`` of it), on its port (any default port for a site on a default port). The one
        rule of what the crawler may fetch (``crawler.offsite``)."""
        try:
            return self._parts_on_site(urlsplit(url.strip()))
        except ValueError:  # an invalid IPv6 literal
            return False

    def _parts_on_site(self, parts: SplitResult) -> bool:
        try:
            scheme = parts.scheme.lower()
            port = parts.port
        except ValueError:  # an invalid port
            return False
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return False
        return self._host_ok(parts.hostname.lower(), scheme, port)

    def canonical(self, url: str, referer: str | None = None) -> str | None:
        """The canonical absolute URL of ``url`` (resolved against ``referer`` or the base).

        ``None`` for other hosts, non-http(s) schemes and static files. Memoised: the same
        links (nav, tags, "Read also") recur on every page.
        """
        if url.startswith("http") or not referer:
            return _canonical_cached(self, url, None)
        if url.startswith("/") and not url.startswith("//"):
            # A path from the root resolves against the referer's scheme and host alone: keyed
            # by those, the links every page of the site shares are resolved once.
            start = referer.find("//")
            end = referer.find("/", start + 2) if start >= 0 else -1
            if end > 0:
                referer = referer[:end]
        return _canonical_cached(self, url, referer)

    def _canonical(self, url: str, referer: str | None) -> str | None:
        url = url.strip()
        if not url:
            return None
        try:
            parts = urlsplit(url) if url[:8].lower().startswith(("http://", "https://")) else None
            if parts is None or not parts.netloc:
                parts = urlsplit(urljoin(referer or self.base + "/", url))
            # else: what urljoin gives back for a URL with a scheme and a host has its scheme,
            # host, port and path, so it is split once instead of joined and split twice more.
        except ValueError:  # an invalid IPv6 literal
            return None
        if not self._parts_on_site(parts):
            return None
        path = self._canonical_path(parts.path)
        if path is None:
            return None
        return urlunsplit((self.scheme, self.netloc, path, "", ""))

    @staticmethod
    def _canonical_path(raw: str) -> str | None:
        segments = [s for s in raw.split("/") if s]
        if not segments:
            return "/"
        last = segments[-1]
        if "." in last and last.rsplit(".", 1)[1].lower() in STATIC_EXTENSIONS:
            return None
        first = segments[0]
        lowered = first.lower()
        if lowered in SECTION_ALIASES:
            lowered = SECTION_ALIASES[lowered]
            first = lowered
        # Lower-case the first segment only where that cannot change which page is meant:
        # a known section or prefix, or an article-shaped path (tass.com slugs are lower-case).
        article_shaped = (
            len(segments) == 2
            and _LOOSE_ARTICLE_RE.match("/" + "/".join(segments)) is not None
            and lowered not in RESERVED_SEGMENTS
        )
        if lowered in SECTIONS or lowered in KNOWN_PREFIXES or article_shaped:
            first = lowered
        segments[0] = first
        return "/" + "/".join(segments)

    # -- classifying -----------------------------------------------------------------------

    def _path(self, url: str) -> str | None:
        canonical = self.canonical(url)
        if canonical is None:
            return None
        return canonical[len(self.base) :]  # a canonical URL is the base and a path, nothing else

    def article_id(self, url: str) -> int | None:
        """The article id when ``url`` is an article URL (``/<slug>/<digits>``), else None.
        Memoised, as ``canonical`` is: every link of every page is asked."""
        return _article_id_cached(self, url)

    def _article_id(self, url: str) -> int | None:
        path = self._path(url)
        if path is None:
            return None
        match = ARTICLE_PATH_RE.match(path)
        if match is None or match.group(1) in RESERVED_SEGMENTS:
            return None
        return int(match.group(2))

    def is_article(self, url: str) -> bool:
        """Whether ``url`` is an article URL."""
        return self.article_id(url) is not None

    def section_of(self, url: str) -> str | None:
        """The first path segment of an article URL (a section, theme slug or ``russia``)."""
        path = self._path(url)
        if path is None:
            return None
        match = ARTICLE_PATH_RE.match(path)
        if match is None or match.group(1) in RESERVED_SEGMENTS:
            return None
        return match.group(1)

    def url_kind(self, url: str) -> UrlKind:
        """One of ``article section theme_or_tag api rss sitemap home other`` (memoised)."""
        return _url_kind_cached(self, url)

    def _url_kind(self, url: str) -> UrlKind:
        path = self._path(url)
        if path is None:
            return "other"
        if path == "/":
            return "home"
        segments = path[1:].split("/")
        first = segments[0].lower()
        if first == "userapi":
            return "api"
        if first == "rss" and len(segments) > 1 and segments[-1].endswith(".xml"):
            return "rss"
        if (path == "/sitemap.xml") or (
            first == "sitemap" and len(segments) > 1 and segments[-1].endswith(".xml")
        ):
            return "sitemap"
        if self.article_id(url) is not None:
            return "article"
        if len(segments) == 1:
            if first in SECTIONS:
                return "section"
            if first in RESERVED_SEGMENTS or not _SLUG_RE.match(segments[0]):
                return "other"
            return "theme_or_tag"
        if len(segments) == 2 and first in TAG_PREFIXES and segments[1]:
            return "theme_or_tag"
        return "other"

    # -- fixed endpoints -------------------------------------------------------------------

    def section_url(self, slug: str) -> str:
        """``<base>/<slug>`` (aliases such as ``sport`` mapped to the current slug)."""
        slug = SECTION_ALIASES.get(slug, slug)
        return f"{self.base}/{slug}"

    def listing_api_url(self) -> str:
        """The listing API endpoint (spec §4), POSTed with a JSON body."""
        return f"{self.base}/userApi/categoryNewsList"

    def rss_url(self) -> str:
        """The one RSS feed for all sections (spec §6)."""
        return f"{self.base}/rss/v2.xml"

    def sitemap_index_url(self) -> str:
        """The sitemap index (spec §7)."""
        return f"{self.base}/sitemap.xml"

    def robots_url(self) -> str:
        """``<base>/robots.txt``."""
        return f"{self.base}/robots.txt"

    def article_url(self, section: str, article_id: int) -> str:
        """``<base>/<section>/<id>``."""
        section = SECTION_ALIASES.get(section, section)
        return f"{self.base}/{section}/{article_id}"


@functools.lru_cache(maxsize=1 << 16)
def _canonical_cached(site: SiteUrls, url: str, referer: str | None) -> str | None:
    return site._canonical(url, referer)


@functools.lru_cache(maxsize=1 << 16)
def _article_id_cached(site: SiteUrls, url: str) -> int | None:
    return site._article_id(url)


@functools.lru_cache(maxsize=1 << 16)
def _url_kind_cached(site: SiteUrls, url: str) -> UrlKind:
    return site._url_kind(url)
