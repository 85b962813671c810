"""In-process crawls: a real Scrapy engine and the replica on one event loop, in the test process.

Scrapy's own test suite runs its engine in the test process on an installed reactor; here the
asyncio reactor is installed once per session on an event loop of its own, started without
taking over the process (``startRunning``, no signal handlers), and each test drives that loop
with ``run(coro)`` until its coroutine is done. The replica (``replica.server.ReplicaServer``)
serves from the same loop on a free port, so a crawl takes a second or two, with no worker
process. Tests elsewhere keep using ``asyncio.run`` on loops of their own: between two ``run``
calls this loop is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from replica.config import ReplicaConfig
from replica.server import ReplicaServer

T = TypeVar("T")

_STATE: dict[str, asyncio.AbstractEventLoop] = {}
ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def reactor_loop() -> asyncio.AbstractEventLoop:
    """The event loop of the session's asyncio reactor (installed on first use)."""
    if "loop" not in _STATE:
        if "twisted.internet.reactor" in sys.modules:
            raise RuntimeError("a Twisted reactor was installed before the in-process harness")
        from twisted.internet import asyncioreactor

        loop = asyncio.new_event_loop()
        asyncioreactor.install(eventloop=loop)
        from twisted.internet import reactor

        reactor.startRunning(installSignalHandlers=False)  # type: ignore[attr-defined]
        _STATE["loop"] = loop
    return _STATE["loop"]


def shutdown() -> None:
    """Stop the reactor's threads and close its loop (the session's end; idempotent)."""
    loop = _STATE.pop("loop", None)
    if loop is None:
        return
    from twisted.internet import reactor

    asyncio.set_event_loop(loop)
    reactor.fireSystemEvent("shutdown")  # type: ignore[attr-defined]
    # The reactor's shutdown stops the loop itself once its triggers (the threads) are done.
    with contextlib.suppress(RuntimeError):
        loop.run_until_complete(asyncio.sleep(1))
    asyncio.set_event_loop(None)
    loop.close()


def run(make: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
    """Run ``make()`` on the reactor's loop until it is done (or ``timeout`` seconds)."""
    loop = reactor_loop()
    asyncio.set_event_loop(loop)

    async def main() -> T:
        return await asyncio.wait_for(make(), timeout)

    try:
        return loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)


@asynccontextmanager
async def replica(**config: Any) -> Iterator[ReplicaServer]:  # type: ignore[misc]
    """The replica served in-process on a free loopback port."""
    server = ReplicaServer(ReplicaConfig(**{"host": "127.0.0.1", "port": 0, **config}))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
