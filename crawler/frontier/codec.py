"""Requests as compact, deterministic JSON (the frontier's queue members).

scrapy-redis pickles requests, so anyone who can write to Redis runs code in every worker.
Here a request is ``Request.to_dict`` minus every value equal to its default, as sorted JSON;
bytes (bodies, headers) are ``{"$u": text}``, or ``{"$b": base64}`` when not UTF-8. The same
request always encodes to the same bytes, so a queue member is also the request's identity
(leases and acks name it). Anything else non-JSON in ``meta`` is an error at enqueue time,
not a silent loss.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.utils.request import request_from_dict

from crawler.frontier.feed import FED_META
from crawler.frontier.queue import Push
from crawler.frontier.versions import SIGHTING_META, Sighting

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider

DELAY_META = "frontier_delay"
"""Meta key of a retry's backoff (seconds): set by the retry middleware, taken by ``push_for``."""
VIA_META = "frontier_via"
"""Meta key of the page a link was found on, when that page is not a listing (set by the
spider, taken by ``push_for``): such a link counts against the run's ``TASS_MAX_RUN_LINKS``."""
HINTS_META = "feed_hints"
"""Meta key of what feeds said of an article (a JSON object by source, ``crawler.pages.hints``).
The spider sets it on the article requests it makes from a feed; ``push_for`` takes it out of
a first naming (it is kept in Redis by article id, ``lua.keep_hint``) and leaves it in a
continuation (a retry, a redirect, a replay: it travels in the member); ``attach_hints`` puts
the kept hint back on the leased request, for the callback."""

FAILED_META = "failed_before"
"""Meta key of a dead letter's request (set when it is kept, ``scheduler``): a replay of it
failed before, which the spider says on its article (``ArticleItem.failed_before``)."""

ATTEMPT_META = (
    "retry_times", "redirect_times", "redirect_ttl", "redirect_urls", "redirect_reasons",
    "download_slot", "download_latency", "download_timeout", "depth", DELAY_META,
)  # fmt: skip
"""Meta keys that describe one attempt, dropped from a dead letter so that a replay starts
fresh (a pending retry's record keeps ``retry_times``: it goes on counting)."""

_BYTES = "$b"
_UTF8 = "$u"
# Keys of Request.to_dict() dropped when they hold these defaults.
_DEFAULTS: dict[str, Any] = {
    "method": "GET",
    "headers": {},
    "body": b"",
    "cookies": {},
    "meta": {},
    "encoding": "utf-8",
    "priority": 0,
    "dont_filter": False,
    "flags": [],
    "cb_kwargs": {},
    "errback": None,
    "callback": None,
}


def _encode(obj: Any) -> Any:
    if isinstance(obj, bytes):
        try:
            return {_UTF8: obj.decode("utf-8")}
        except UnicodeDecodeError:
            return {_BYTES: base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, dict):
        return {
            (k.decode("latin-1") if isinstance(k, bytes) else str(k)): _encode(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"cannot queue a request holding {type(obj).__name__}: {obj!r}")


def _decode_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _UTF8 in obj:
            return str(obj[_UTF8]).encode("utf-8")
        if _BYTES in obj:
            return base64.b64decode(obj[_BYTES])
    return obj


def _method_name(spider: Spider, func: Any) -> str | None:
    """The name of a spider method used as a callback (what ``Request.to_dict`` finds by
    scanning every member of the spider, which costs ~0.1 ms a request)."""
    if func is None or isinstance(func, str):
        return func
    name = getattr(func, "__name__", None)
    if getattr(func, "__self__", None) is spider and name and getattr(spider, name) == func:
        return str(name)
    raise ValueError(f"{func!r} is not a method of the spider: a queued request cannot hold it")


def encode_request(request: Request, spider: Spider) -> bytes:
    """The queue member for ``request``: ``Request.to_dict`` without its member scan."""
    data: dict[str, Any] = {
        "url": request.url,
        "callback": _method_name(spider, request.callback),
        "errback": _method_name(spider, request.errback),
        "headers": dict(request.headers),
    }
    for attr in request.attributes:
        data.setdefault(attr, getattr(request, attr))
    if type(request) is not Request:
        data["_class"] = f"{type(request).__module__}.{type(request).__name__}"
    compact = {k: v for k, v in data.items() if k not in _DEFAULTS or v != _DEFAULTS[k]}
    return json.dumps(
        _encode(compact), separators=(",", ":"), sort_keys=True, ensure_ascii=False
    ).encode()


def decode_request(member: bytes | str, spider: Spider) -> Request:
    """Rebuild a request from its member; never runs code (callbacks are method names)."""
    data = json.loads(member, object_hook=_decode_hook)
    if not isinstance(data, dict) or "url" not in data:
        raise ValueError(f"not a queued request: {member[:200]!r}")
    return request_from_dict(data, spider=spider)


def take_hints(request: Request) -> bytes:
    """The request's feed hints as compact JSON, taken out of its meta (``b""``: none)."""
    value = request.meta.pop(HINTS_META, None)
    if not isinstance(value, dict) or not value:
        return b""
    return json.dumps(_encode(value), separators=(",", ":"), ensure_ascii=False).encode()


def attach_hints(request: Request, hint: bytes) -> None:
    """Put the hint kept for a leased request's article on it (over what its member carried)."""
    if not hint:
        return
    try:
        kept = json.loads(hint)
    except ValueError:
        return
    if isinstance(kept, dict):
        carried = request.meta.get(HINTS_META)
        request.meta[HINTS_META] = {**(carried if isinstance(carried, dict) else {}), **kept}


def push_for(request: Request, spider: Spider, fingerprint: Callable[[Request], bytes]) -> Push:
    """How ``request`` is queued: member, priority, dedupe key (a feed's sighting of an article:
    by its version, ``versions``), delay, feed hint and the page it was found on (the delay's
    and the page's meta keys are taken out of the request, so they are not part of the member;
    so is the hint of a first naming, see ``HINTS_META``)."""
    delay = float(request.meta.pop(DELAY_META, 0) or 0)
    via = str(request.meta.pop(VIA_META, "") or "")
    raw_id = request.meta.get("article_id")
    article_id = raw_id if isinstance(raw_id, int) and 0 < raw_id < 2**32 else 0
    # A redirect continues under the claim of the request it came from; a retry was
    # deduplicated when first queued.
    unfiltered = request.dont_filter or bool(request.meta.get("redirect_times"))
    hint = take_hints(request) if article_id and not unfiltered else b""
    sighting = Sighting.from_meta(request.meta.get(SIGHTING_META))
    return Push(
        member=encode_request(request, spider),
        priority=request.priority,
        article_id=article_id,
        fingerprint="" if article_id else fingerprint(request).hex(),
        unfiltered=unfiltered,
        sighting=sighting.mode() if article_id and sighting is not None else "",
        refresh=bool(article_id) and bool(request.meta.get(FED_META)),
        delay_ms=int(delay * 1000),
        via=via,
        hint=hint,
    )
