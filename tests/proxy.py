"""A rewriting proxy in front of the replica, and another host, for the hostile-content tests.

Tests only, on the running event loop (the in-process reactor's, ``tests.inprocess``), each on a
free port of 127.0.0.1. ``RewritingProxy`` forwards every request to the replica and hands its
answer back unchanged, except on the paths a test rewrites (``proxy.rules[path]``: a handler
given the request and the proxy, which may ``fetch`` the replica's own answer first).
``OtherHost`` is another site (another port, so another origin): it serves fixed pages and
keeps every path it was asked for, so a test can tell that nothing was fetched from it.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import ClientSession, web

Handler = Callable[[web.BaseRequest, "RewritingProxy"], Awaitable[web.StreamResponse]]
PASSED_HEADERS = ("Content-Type", "Location", "Retry-After")
"""Response headers of the replica the proxy passes on (bodies arrive decoded)."""


async def _serve(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
) -> tuple[web.ServerRunner, str]:
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    runner = web.ServerRunner(web.Server(handler, access_log=None), handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


def html(body: bytes | str, status: int = 200) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, headers={"Content-Type": "text/html"})


def redirect(location: str, status: int = 301) -> Handler:
    """A handler answering ``status`` with ``Location: location``."""

    async def handle(request: web.BaseRequest, proxy: RewritingProxy) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handle


def rewrite(change: Callable[[bytes], bytes]) -> Handler:
    """A handler serving the replica's page for the path with ``change`` applied to it."""

    async def handle(request: web.BaseRequest, proxy: RewritingProxy) -> web.StreamResponse:
        status, headers, body = await proxy.fetch(request)
        return web.Response(status=status, body=change(body), headers=headers)

    return handle


@dataclass
class RewritingProxy:
    """Forwards to ``upstream`` (the replica), except on the paths of ``rules``."""

    upstream: str
    rules: dict[str, Handler] = field(default_factory=dict)
    answered: Counter[str] = field(default_factory=Counter)
    """How many times each rewritten path was asked for."""
    url: str = ""
    _runner: web.ServerRunner | None = None
    _session: ClientSession | None = None

    async def start(self) -> str:
        self._session = ClientSession(auto_decompress=True)
        self._runner, self.url = await _serve(self.handle)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def fetch(self, request: web.BaseRequest) -> tuple[int, dict[str, str], bytes]:
        """The replica's answer to ``request``: status, passed headers, decoded body."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k in ("User-Agent", "Content-Type")}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read(),
            headers=headers,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            passed = {k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}
            return answer.status, passed, body

    async def get(self, path: str) -> bytes:
        """The replica's page at ``path`` (for a test building its rewrites)."""
        assert self._session is not None
        headers = {"User-Agent": "tass-crawler tests (+https://example.org)"}
        async with self._session.get(self.upstream + path, headers=headers) as answer:
            return await answer.read()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        rule = self.rules.get(request.path)
        if rule is not None:
            self.answered[request.path] += 1
            return await rule(request, self)
        status, headers, body = await self.fetch(request)
        return web.Response(status=status, body=body, headers=headers)


@dataclass
class OtherHost:
    """Another origin serving ``pages`` (path → HTML); ``asked`` is every path requested."""

    pages: dict[str, bytes] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.ServerRunner | None = None

    async def start(self) -> str:
        self._runner, self.url = await _serve(self.handle)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.asked.append(request.path_qs)
        page = self.pages.get(request.path)
        return html(page) if page is not None else html(b"<html>no</html>", 404)
