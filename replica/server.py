"""The aiohttp server: one low-level handler that routes, counts, misbehaves on cue and serves.

``Site`` holds the archive, the state of the current day and its renderer; ``ReplicaServer``
binds a socket (port 0 picks a free one) and serves ``Site`` over HTTP. Control endpoints under
``/__replica__/`` (truth, stats, advance, switches, info) bypass the User-Agent check, the faults
and the stats.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from replica.alt import AltRenderer
from replica.config import (
    ALIAS_PREFIXES,
    RUSSIA_PREFIX,
    SECTIONS,
    SWITCHES,
    THEMES,
    ReplicaConfig,
)
from replica.corpus import MSK, Archive, SiteState, day_start
from replica.faults import CHALLENGE, CHALLENGE_PAGE, Faults, ua_allowed, ua_allowed_rss
from replica.hostile import (
    HostileSet,
    gzip_bomb,
    huge_page_parts,
    with_bad_bytes,
)
from replica.render import Renderer
from replica.stats import Stats
from replica.truth import build_truth

HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
XML = "application/xml; charset=utf-8"
_ARTICLE = re.compile(r"^/([a-z-]+)/(\d+)$")
_SITEMAP = re.compile(r"^/sitemap/([A-Za-z0-9_-]+\.xml)$")
_ARCHIVE = re.compile(r"^/archive/(\d{4})/(\d{2})/(\d{2})$")
_KNOWN_PREFIXES = frozenset([*SECTIONS, *THEMES, RUSSIA_PREFIX, *ALIAS_PREFIXES])
RENDERERS: dict[str, type[Renderer]] = {"default": Renderer, "alt": AltRenderer}
"""The renderer of each ``ReplicaConfig.markup``."""


def _response(body: bytes, content_type: str = HTML, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def _redirect(location: str) -> web.Response:
    return web.Response(status=301, headers={"Location": location, "Content-Type": HTML})


def _json(data: Any, status: int = 200) -> web.Response:
    return _response(json.dumps(data, ensure_ascii=False).encode(), JSON, status)


class Site:
    """The replica's content at the current day under the current switches; ``advance`` moves
    it forward, ``switch`` changes how it is rendered (markup, sitemap layout)."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.config = config
        self.archive = Archive(config.seed, config.articles, day_start(config))
        self._parts: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.base_url = config.base_url or f"http://{config.host}:{config.port}"
        self.set_day(config.day)

    def bind(self, base_url: str) -> None:
        """Fix the absolute base once the port is known (drops everything rendered)."""
        self.base_url = base_url.rstrip("/")
        self._parts.clear()
        self.set_day(self.state.day)

    def set_day(self, day: int) -> None:
        self.state = SiteState(self.archive, day)
        self.hostile = HostileSet(self.archive, self.state.now) if self.config.hostile else None
        self._by_date: dict[date, list[int]] | None = None
        self._render()

    def _render(self) -> None:
        links = []
        if self.hostile is not None:
            links = [(e.path, e.label) for e in self.hostile.entries]
        renderer = RENDERERS[self.config.markup]
        self.renderer = renderer(self.state, self.config, self.base_url, links, self._parts)
        self._truth: bytes | None = None

    def advance(self, days: int) -> None:
        self.set_day(self.state.day + days)

    def switch(self, **changes: object) -> None:
        """Change some of ``SWITCHES`` (validated by ``ReplicaConfig``); the day stays."""
        unknown = sorted(set(changes) - set(SWITCHES))
        if unknown:
            known = ", ".join(SWITCHES)
            raise ValueError(f"not a switch: {', '.join(unknown)} (switches: {known})")
        config = self.config.replace(**changes)
        if config.markup != self.config.markup:
            self._parts.clear()
        self.config = config
        self._render()

    def switches(self) -> dict[str, Any]:
        return {name: getattr(self.config, name) for name in SWITCHES}

    def truth(self) -> dict[str, Any]:
        return build_truth(self.renderer, self.hostile)

    def truth_bytes(self) -> bytes:
        if self._truth is None:
            self._truth = json.dumps(self.truth(), ensure_ascii=False).encode()
        return self._truth

    def articles_on(self, day: date) -> list[int]:
        if self._by_date is None:
            by_date: dict[date, list[int]] = {}
            state = self.state
            for i in state.ordered:
                a = state.articles[i]
                if not a.orphan and a.prefix != RUSSIA_PREFIX:
                    by_date.setdefault(datetime.fromtimestamp(a.published, MSK).date(), []).append(
                        i
                    )
            self._by_date = by_date
        return self._by_date.get(day, [])[:250]


class ReplicaServer:
    """Serves a ``Site`` on a real socket. ``await start()`` returns the base URL."""

    def __init__(self, config: ReplicaConfig) -> None:
        self.config = config
        self.site = Site(config)
        self.stats = Stats()
        self.faults = Faults(config)
        self._runner: web.ServerRunner | None = None
        self._bomb: asyncio.Future[bytes] | None = None
        self.port = config.port
        self.listen_url = ""

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        self.port = sock.getsockname()[1]
        host = self.config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self.listen_url = f"http://{host}:{self.port}"
        """Where a local client reaches the server (the printed address)."""
        self.site.bind(self.config.base_url or self.listen_url)
        server = web.Server(self.handle, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()
        return self.site.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- request handling -----------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__replica__/"):
            return await self._control(request, path)
        self.stats.enter()
        try:
            return await self._serve(request, path)
        finally:
            self.stats.leave()

    async def _serve(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        ua = request.headers.get("User-Agent", "")
        if not ua_allowed(ua):
            self.stats.record("forbidden", ua)
            return _response(b"<html><body><h1>403 Forbidden</h1></body></html>", status=403)
        if self.faults.enabled:
            status, delay = self.faults.check(request.path_qs)
            if delay:
                await asyncio.sleep(delay)
            if status == 503:
                self.stats.record("fault_503", ua)
                return _response(
                    b"<html><body><h1>503 Service Unavailable</h1></body></html>", status=503
                )
            if status == CHALLENGE:
                self.stats.record("fault_challenge", ua)
                self.stats.challenged[request.path_qs] += 1
                return _response(CHALLENGE_PAGE)
            if status == 429:
                self.stats.record("fault_429", ua)
                resp = _response(
                    b"<html><body><h1>429 Too Many Requests</h1></body></html>", status=429
                )
                resp.headers["Retry-After"] = "1"
                return resp
        kind, response = await self._route(request, path, ua)
        self.stats.record(kind, ua)
        if isinstance(response, web.StreamResponse) and not isinstance(response, web.Response):
            return await self._stream(request, kind, response)
        return response

    async def _route(
        self, request: web.BaseRequest, path: str, ua: str
    ) -> tuple[str, web.StreamResponse]:
        site = self.site
        r = site.renderer
        method = request.method
        if path.startswith("/userApi/"):
            if method != "POST":
                return "bad_request", _json({"error": "POST only"}, 405)
            if path == "/userApi/categoryNewsList":
                return "api_list", await self._api_list(request)
            if path == "/userApi/search":
                return "api_search", await self._api_search(request)
            return "not_found", _json({"error": "not found"}, 404)
        if method not in ("GET", "HEAD"):
            return "bad_request", _response(b"method not allowed", "text/plain", 405)
        host = request.headers.get("Host", "")
        if host.startswith("www."):
            return "redirect", _redirect(site.base_url + request.path_qs)
        m = _ARTICLE.match(path)
        if m is not None:
            return await self._article(request, path, m.group(1), int(m.group(2)))
        if path == "/":
            return "home", _response(r.home())
        if path == "/robots.txt":
            return "robots", _response(r.robots(), "text/plain; charset=utf-8")
        if path == "/rss/v2.xml":
            if not ua_allowed_rss(ua):
                return "forbidden", _response(b"<h1>403 Forbidden</h1>", status=403)
            return "rss", _response(r.rss(), "application/rss+xml; charset=utf-8")
        if path == "/sitemap.xml":
            return "sitemap", _response(r.sitemap_index(), XML)
        sm = _SITEMAP.match(path)
        if sm is not None:
            sitemap = r.sitemap(sm.group(1))
            if sitemap is None:
                return "not_found", _response(r.not_found(), status=404)
            return "sitemap", _response(sitemap, XML)
        if path == "/today":
            return "static", _response(r.today())
        if path == "/sport":
            return "redirect", _redirect("/sports")
        if len(path) > 1 and path.endswith("/") and not path.endswith("//"):
            return "redirect", _redirect(path.rstrip("/"))
        slug = path[1:]
        if slug in SECTIONS:
            return "section", _response(r.section(slug))
        if slug in THEMES:
            return "theme", _response(r.section(slug))
        tag = r.tag_route(path)
        if tag is not None:
            role, tag_slug = tag
            if role == "listing":
                try:
                    page = int(request.query.get("page", "1"))
                except ValueError:
                    page = 0
                body = r.tag(tag_slug, page)
                if body is not None:
                    return "tag", _response(body)
            elif tag_slug in site.state.tag_pages:
                return "redirect", _redirect(r.tag_listing + tag_slug)
        am = _ARCHIVE.match(path)
        if am is not None and site.hostile is not None:
            return self._archive(int(am.group(1)), int(am.group(2)), int(am.group(3)))
        return "not_found", _response(r.not_found(), status=404)

    async def _article(
        self, request: web.BaseRequest, path: str, prefix: str, article_id: int
    ) -> tuple[str, web.StreamResponse]:
        site = self.site
        hostile = site.hostile
        if hostile is not None:
            if path == hostile.loop_a:
                return "hostile", _redirect(hostile.loop_b)
            if path == hostile.loop_b:
                return "hostile", _redirect(hostile.loop_a)
            if path == hostile.gzip_bomb:
                if self._bomb is None:
                    # About half a second of CPU, once: built in a thread, not on the loop.
                    self._bomb = asyncio.get_running_loop().run_in_executor(None, gzip_bomb)
                resp = web.Response(
                    body=await self._bomb,
                    headers={"Content-Type": HTML, "Content-Encoding": "gzip"},
                )
                return "hostile", resp
            if path in (hostile.huge, hostile.truncated):
                return "hostile", web.StreamResponse(headers={"Content-Type": HTML})
            if path == hostile.empty:
                return "hostile", _response(b"")
        a = site.state.by_id.get(article_id)
        if a is None or prefix not in _KNOWN_PREFIXES:
            return "not_found", _response(site.renderer.not_found(), status=404)
        if prefix == "sport":
            return "redirect", _redirect(f"/sports/{article_id}")
        if path != a.path or any(k.startswith("utm_") for k in request.query):
            return "redirect", _redirect(a.path)
        page = site.renderer.article_page(a.index)
        if hostile is not None:
            if a.index == hostile.cp1251_index:
                html = page.decode().replace(
                    '<meta charset="utf-8">', '<meta charset="windows-1251">'
                )
                body = html.encode("cp1251", errors="xmlcharrefreplace")
                return "article", _response(body, "text/html; charset=windows-1251")
            if a.index == hostile.invalid_index:
                return "article", _response(with_bad_bytes(page))
        return "article", _response(page)

    def _archive(self, year: int, month: int, day: int) -> tuple[str, web.StreamResponse]:
        r = self.site.renderer
        try:
            when = date(year, month, day)
        except ValueError:
            return "not_found", _response(r.not_found(), status=404)
        prev = when - timedelta(days=1) if when > date.min else when
        nxt = when + timedelta(days=1) if when < date.max else when
        body = r.archive_day(
            when,
            self.site.articles_on(when),
            f"/archive/{prev:%Y/%m/%d}",
            f"/archive/{nxt:%Y/%m/%d}",
        )
        return "hostile", _response(body)

    async def _stream(
        self, request: web.BaseRequest, kind: str, resp: web.StreamResponse
    ) -> web.StreamResponse:
        """The two streamed traps: the huge page and the truncated one."""
        hostile = self.site.hostile
        assert hostile is not None
        try:
            if request.path == hostile.huge:
                parts = huge_page_parts()
                resp.content_length = sum(len(p) for p in parts)
                await resp.prepare(request)
                if request.method != "HEAD":
                    for part in parts:
                        await resp.write(part)
                return resp
            state = self.site.state
            page = self.site.renderer.article_page(state.listed[0])
            resp.content_length = len(page)
            resp.force_close()
            await resp.prepare(request)
            start = max(0, page.find(b'<div class="text-content">'))
            await resp.write(page[: start + (len(page) - start) // 4])
            if request.transport is not None:
                request.transport.close()
        except ConnectionError:
            pass
        return resp

    # -- the listing and search APIs ------------------------------------------------------
    async def _api_list(self, request: web.BaseRequest) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            feed = int(data["sectionId"])
            limit = int(data.get("limit", 20) or 20)
            raw_ts = data.get("timestamp")
            timestamp = None if raw_ts in (None, "", 0) else int(raw_ts)
            exclude = _ids(data.get("excludeNewsIds"))
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": f"bad request: {exc}"}, 400)
        limit = max(1, min(limit, 10000))
        r = self.site.renderer
        items = self.site.state.feed_page(feed, limit, timestamp, exclude)
        last = items[-1].published if items else timestamp
        body = (
            '{"newsList":['
            + ",".join(r.api_item(a) for a in items)
            + f'],"lastTime":{json.dumps(last)}}}'
        )
        return _response(body.encode(), JSON)

    async def _api_search(self, request: web.BaseRequest) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            words = str(data.get("searchStr") or "").lower().split()
            sections = {int(s) for s in (data.get("sections") or [])}
            offset = max(0, int(data.get("from") or 0))
            size = max(1, min(int(data.get("size") or 20), 1000))
        except (ValueError, TypeError) as exc:
            return _json({"error": f"bad request: {exc}"}, 400)
        state = self.site.state
        found = state.search(words, sections, offset, size)
        return _json(
            [
                {
                    "id": a.id,
                    "link": a.path,
                    "title": state.titles[a.index],
                    "date": a.published,
                    "lead": a.lead or "",
                    "sectionId": a.feeds[0] if a.feeds else None,
                }
                for a in found
            ]
        )

    # -- control endpoints ----------------------------------------------------------------
    async def _control(self, request: web.BaseRequest, path: str) -> web.Response:
        site = self.site
        if path == "/__replica__/truth":
            return _response(site.truth_bytes(), JSON)
        if path == "/__replica__/stats":
            return _json(self.stats.snapshot())
        if path == "/__replica__/stats/reset" and request.method == "POST":
            self.stats.reset()
            return _json({"ok": True})
        if path == "/__replica__/advance" and request.method == "POST":
            try:
                days = int(request.query.get("days", "1"))
            except ValueError:
                days = 0
            if days < 1:
                return _json({"error": "days must be a positive integer"}, 400)
            site.advance(days)
            return _json({"day": site.state.day, "articles": len(site.state.articles)})
        if path == "/__replica__/switches":
            if request.method == "POST":
                try:
                    site.switch(**_switch_values(request.query))
                except ValueError as exc:
                    return _json({"error": str(exc)}, 400)
            elif request.method != "GET":
                return _json({"error": "GET or POST"}, 405)
            return _json(site.switches())
        if path == "/__replica__/info":
            cfg = self.config
            return _json(
                {
                    "seed": cfg.seed,
                    "articles": cfg.articles,
                    "day": site.state.day,
                    "start_date": cfg.start_date.isoformat(),
                    "base_url": site.base_url,
                    "hostile": cfg.hostile,
                    **site.switches(),
                }
            )
        return _json({"error": "unknown control endpoint"}, 404)


def _switch_values(query: Any) -> dict[str, object]:
    """``?markup=alt&sitemap-layout=daily`` as typed ``ReplicaConfig`` fields (``-`` or ``_``)."""
    types = {"sitemap_chunk": int, "sitemap_no_lastmod": float}
    out: dict[str, object] = {}
    for key, raw in query.items():
        name = key.replace("-", "_")
        convert = types.get(name, str)
        try:
            out[name] = convert(raw)
        except ValueError:
            raise ValueError(f"{name}: not a number: {raw!r}") from None
    if not out:
        raise ValueError(f"name at least one switch: {', '.join(SWITCHES)}")
    return out


def _ids(value: object) -> set[int]:
    """``excludeNewsIds`` as a comma-separated string or a JSON array."""
    if value is None or value == "":
        return set()
    if isinstance(value, str):
        parts: list[object] = [p for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        parts = list(value)
    else:
        raise ValueError("excludeNewsIds must be a string or an array")
    out = set()
    for p in parts:
        try:
            out.add(int(str(p).strip()))
        except ValueError:
            continue
    return out
