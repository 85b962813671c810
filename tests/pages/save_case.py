"""Save pages of a running replica as page-object test cases (``tests/pages/cases/<name>/``).

Each case is ``input.html`` (the body bytes exactly as served), ``meta.json`` (``url``, ``base``,
``page``, and ``encoding`` when the server declared a charset) and ``expected.json``. For
articles the expectation comes from the replica's ground truth (``--truth``), never from the
page objects; for hubs, listings and feeds it is a snapshot of the page object's output, to be
reviewed by eye before committing. The replica's base URL is rewritten to ``https://tass.com``
everywhere, so the cases also exercise the real site's canonical form.

    python -m replica --port 0 --articles 400 --seed 7 --truth /tmp/truth.json &
    python -m tests.pages.save_case --base http://127.0.0.1:PORT --truth /tmp/truth.json --auto
    python -m tests.pages.save_case --base ... --truth ... --path /defense/2198931 --name x
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from crawler.pages import (
    ArticlePage,
    ExtractionError,
    HubPage,
    ListingPage,
    RssPage,
    SitemapIndexPage,
    SitemapPage,
    listing_request_body,
    next_cursor,
)
from crawler.urls import SiteUrls

CASES = Path(__file__).parent / "cases"
TASS = "https://tass.com"
USER_AGENT = "tass-crawler/0.1 (+https://example.org)"


def fetch(url: str, data: dict[str, Any] | None = None) -> tuple[bytes, str | None, str]:
    """(body, declared charset, final URL); a body cut off mid-transfer is returned as is."""
    body = json.dumps(data).encode() if data is not None else None
    headers = {"User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            charset = resp.headers.get_content_charset()
            try:
                content = resp.read()
            except http.client.IncompleteRead as exc:
                content = exc.partial
            return content, charset, resp.geturl()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.read(), exc.headers.get_content_charset(), url


def rebase(value: Any, base: str) -> Any:
    """``value`` with the replica's base URL replaced by ``https://tass.com`` throughout."""
    if isinstance(value, bytes):
        return value.replace(base.encode(), TASS.encode())
    if isinstance(value, str):
        return value.replace(base, TASS)
    if isinstance(value, list):
        return [rebase(v, base) for v in value]
    if isinstance(value, dict):
        return {k: rebase(v, base) for k, v in value.items()}
    return value


ARTICLE_FIELDS = (
    "id",
    "url",
    "section",
    "kind",
    "title",
    "lead",
    "body",
    "dateline",
    "published_at",
    "modified_at",
    "tags",
    "mark",
    "images",
    "related",
)


def truth_expected(article: dict[str, Any]) -> dict[str, Any]:
    """The item fields of one ground-truth article, in the shape of ``ArticleItem.to_dict``."""
    out = {field: article[field] for field in ARTICLE_FIELDS}
    out["body"] = "\n\n".join(article["body"])
    return out


def snapshot(page: str, url: str, body: bytes, urls: SiteUrls) -> dict[str, Any]:
    """What the page objects make of a non-article page (reviewed by eye)."""
    if page == "hub":
        hub = HubPage(url, body, urls)
        return {
            "section_id": hub.section_id(),
            "article_links": hub.article_links(),
            "hub_links": hub.hub_links(),
        }
    if page == "listing":
        listing = ListingPage(url, body, urls)
        cursor = next_cursor(listing.entries, listing.last_time, [])
        return {
            "entries": [
                {"id": e.id, "url": e.url, "date": e.date.isoformat(), "title": e.title}
                for e in listing.entries
            ],
            "last_time": listing.last_time,
            "next_cursor": list(cursor) if cursor is not None else None,
        }
    if page == "rss":
        return {
            "entries": [
                {
                    "url": e.url,
                    "title": e.title,
                    "published": e.published.isoformat() if e.published else None,
                }
                for e in RssPage(url, body, urls).entries()
            ]
        }
    if page == "sitemap_index":
        return {"sitemaps": SitemapIndexPage(url, body, urls).sitemaps()}
    if page == "sitemap":
        return {
            "entries": [
                {"url": e.url, "lastmod": e.lastmod.isoformat() if e.lastmod else None}
                for e in SitemapPage(url, body, urls).entries()
            ]
        }
    raise ValueError(f"no snapshot for page kind {page!r}")


def write_case(
    name: str,
    url: str,
    body: bytes,
    page: str,
    expected: dict[str, Any],
    encoding: str | None = None,
    request: dict[str, Any] | None = None,
    covers: list[str] | None = None,
) -> Path:
    folder = CASES / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    suffix = {"listing": "json", "rss": "xml", "sitemap_index": "xml", "sitemap": "xml"}
    (folder / f"input.{suffix.get(page, 'html')}").write_bytes(body)
    meta: dict[str, Any] = {"url": url, "base": TASS, "page": page}
    if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
        meta["encoding"] = encoding
    if request is not None:
        meta["request"] = request
    if covers:
        meta["covers"] = covers
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    text = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    (folder / "expected.json").write_text(text, encoding="utf-8")
    return folder


def save_article(
    base: str, truth: dict[str, Any], path: str, name: str, covers: list[str] | None = None
) -> Path:
    article = next((a for a in truth["articles"] if a["path"] == path), None)
    body, charset, final = fetch(base + path)
    url = rebase(final, base)
    if article is None:
        hostile = {h["path"]: h for h in truth.get("hostile", [])}
        try:
            ArticlePage(url, rebase(body, base), SiteUrls(TASS), encoding=charset).to_item()
        except ExtractionError as exc:
            expected: dict[str, Any] = {"error": exc.reason}
        else:
            raise SystemExit(f"{path} is not in the truth and extracts fine: no expectation")
        if path in hostile:
            expected["why"] = hostile[path]["why"]
    else:
        expected = rebase(truth_expected(article), base)
    return write_case(name, url, rebase(body, base), "article", expected, charset, None, covers)


def save_snapshot(
    base: str, path: str, name: str, page: str, request: dict[str, Any] | None = None
) -> Path:
    body, charset, final = fetch(base + path, request)
    url = rebase(final, base)
    body = rebase(body, base)
    expected = snapshot(page, url, body, SiteUrls(TASS))
    return write_case(name, url, body, page, expected, charset, request)


# -- the broad automatic set ---------------------------------------------------------------

FEATURES: dict[str, Any] = {
    "kind-news": lambda a, h: a["kind"] == "news",
    "kind-article": lambda a, h: a["kind"] == "article",
    "kind-interview": lambda a, h: a["kind"] == "interview",
    "kind-opinion": lambda a, h: a["kind"] == "opinion",
    "kind-gallery": lambda a, h: a["kind"] == "gallery",
    "readalso-div": lambda a, h: 'class="read-also"' in h,
    "readalso-p-strong": lambda a, h: "<p><strong>Read also</strong>" in h,
    "readalso-aside": lambda a, h: 'class="article-aside"' in h,
    "readalso-utm": lambda a, h: "utm_campaign=readalso" in h,
    "readalso-several": lambda a, h: len(a["related"]) >= 3,
    "mark-header-link": lambda a, h: '<a class="mark"' in h,
    "mark-header-span": lambda a, h: '<span class="mark">' in h,
    "mark-tag-label": lambda a, h: 'class="tag-label"' in h,
    "mark-marks-item": lambda a, h: 'class="marks__item"' in h,
    "caption-spans": lambda a, h: "news-media__caption-text" in h,
    "caption-figcaption": lambda a, h: "<figcaption>" in h,
    "caption-p-after": lambda a, h: 'class="news-media__text"' in h,
    "canonical-link": lambda a, h: 'rel="canonical"' in h,
    "no-canonical-link": lambda a, h: 'rel="canonical"' not in h,
    "no-lead-news": lambda a, h: a["lead"] is None and a["kind"] == "news",
    "no-photo": lambda a, h: not a["images"],
    "no-tags": lambda a, h: not a["tags"],
    "three-tags": lambda a, h: len(a["tags"]) >= 3,
    "russia-prefix": lambda a, h: a["section"] == "russia",
    "theme-prefix": lambda a, h: a["section"] != a["home_section"] and a["section"] != "russia",
    "pressreview": lambda a, h: a["section"] == "pressreview",
    "edited": lambda a, h: a["revision"] > 1,
    "blockquote": lambda a, h: "<blockquote>" in h,
    "no-dateline": lambda a, h: a["dateline"] is None and a["kind"] == "news",
    "dateline-region": lambda a, h: bool(a["dateline"]) and "/" in a["dateline"],
    "dateline-two-words": lambda a, h: bool(a["dateline"]) and " " in a["dateline"],
    "inline-ads": lambda a, h: "ad_inline" in h,
    "three-text-blocks": lambda a, h: h.count('class="text-block"') >= 3,
    "duplicate": lambda a, h: a["duplicate_of"] is not None,
    "sports": lambda a, h: a["section"] == "sports",
}


def auto(base: str, truth: dict[str, Any]) -> list[Path]:
    """A broad set: every feature above at least once, plus the hostile and non-article pages."""
    pages: dict[str, tuple[dict[str, Any], set[str]]] = {}
    hostile_paths = {h["path"]: h for h in truth.get("hostile", [])}
    for article in truth["articles"]:
        if article["path"] in hostile_paths or not article["reachable"]:
            continue
        html = fetch(base + article["path"])[0].decode("utf-8", "replace")
        found = {name for name, test in FEATURES.items() if test(article, html)}
        pages[article["path"]] = (article, found)
    pages_features = {path: found for path, (_a, found) in pages.items()}
    chosen: list[tuple[str, set[str]]] = []
    uncovered = set(FEATURES)
    while uncovered:
        best = max(pages.items(), key=lambda kv: len(kv[1][1] & uncovered))
        gain = best[1][1] & uncovered
        if not gain:
            break
        chosen.append((best[0], gain))
        uncovered -= gain
        del pages[best[0]]
    saved = []
    for path, gain in chosen:
        article = next(a for a in truth["articles"] if a["path"] == path)
        label = sorted(gain)[0].removeprefix("kind-")
        name = f"article-{article['kind']}-{label}-{article['id']}"
        covers = sorted(pages_features[path])
        saved.append(save_article(base, truth, path, name, covers))
    for h in truth.get("hostile", []):
        if h["kind"] in ("cp1251", "invalid_bytes", "truncated", "empty_body"):
            saved.append(save_article(base, truth, h["path"], f"article-hostile-{h['kind']}"))
    saved.append(save_article(base, truth, "/today", "not-article-today"))
    saved.append(save_article(base, truth, "/defense", "not-article-section-page"))
    saved.append(save_snapshot(base, "/", "hub-home", "hub"))
    saved.append(save_snapshot(base, "/defense", "hub-section-defense", "hub"))
    saved.append(save_snapshot(base, "/military-operation-in-ukraine", "hub-theme", "hub"))
    for a in truth["articles"]:
        html = fetch(base + a["path"])[0].decode("utf-8", "replace")
        match = re.search(r'href="(/tag/[a-z0-9-]+)"', html)
        if match:
            saved.append(save_snapshot(base, match.group(1), "hub-tag", "hub"))
            break
    calendar = next((h["path"] for h in truth.get("hostile", []) if h["kind"] == "calendar"), None)
    if calendar is not None:
        saved.append(save_snapshot(base, calendar, "hub-archive-calendar", "hub"))
    api = "/userApi/categoryNewsList"
    first = listing_request_body(4953, 5)
    saved.append(save_snapshot(base, api, "listing-defense-first", "listing", first))
    body = fetch(base + api, first)[0]
    listing = ListingPage(base + api, body, SiteUrls(base))
    cursor = next_cursor(listing.entries, listing.last_time, [])
    if cursor is not None:
        second = listing_request_body(4953, 5, cursor[0], cursor[1])
        saved.append(save_snapshot(base, api, "listing-defense-second", "listing", second))
    past = listing_request_body(4953, 5, 1_000_000_000)
    saved.append(save_snapshot(base, api, "listing-empty", "listing", past))
    saved.append(save_snapshot(base, "/rss/v2.xml", "rss", "rss"))
    saved.append(save_snapshot(base, "/sitemap.xml", "sitemap-index", "sitemap_index"))
    saved.append(save_snapshot(base, "/sitemap/sitemap_news0.xml", "sitemap-news0", "sitemap"))
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the running replica, http://host:port")
    parser.add_argument("--truth", type=Path, required=True, help="its --truth JSON file")
    parser.add_argument("--auto", action="store_true", help="save the broad automatic set")
    parser.add_argument("--path", help="one page to save, e.g. /defense/2198931")
    parser.add_argument("--name", help="the case folder name")
    parser.add_argument(
        "--page",
        default="article",
        choices=("article", "hub", "listing", "rss", "sitemap_index", "sitemap"),
    )
    args = parser.parse_args()
    base = args.base.rstrip("/")
    truth = json.loads(args.truth.read_text())
    if args.auto:
        saved = auto(base, truth)
    elif args.path and args.name:
        if args.page == "article":
            saved = [save_article(base, truth, args.path, args.name)]
        else:
            saved = [save_snapshot(base, args.path, args.name, args.page)]
    else:
        parser.error("give --auto, or --path and --name")
    for folder in saved:
        print(folder.relative_to(CASES.parent))


if __name__ == "__main__":
    main()
