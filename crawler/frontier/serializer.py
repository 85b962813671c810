"""JSON serializer for scrapy-redis queues (``SCHEDULER_SERIALIZER``).

scrapy-redis pickles requests by default, so anyone who can write to Redis runs code in every
worker. Requests are plain dicts (``Request.to_dict``); the only non-JSON values are bytes
(body, headers), stored as ``{"$b": base64}``. Anything else non-JSON in ``meta`` is an error at
enqueue time, not a silent loss.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_BYTES = "$b"


def _encode(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {_BYTES: base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, bytes) else k.decode("latin-1"): _encode(v)
                for k, v in obj.items()}  # fmt: skip
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"cannot queue a request holding {type(obj).__name__}: {obj!r}")


def _decode_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _BYTES in obj:
        return base64.b64decode(obj[_BYTES])
    return obj


def dumps(obj: dict[str, Any]) -> bytes:
    """Encode a request dict."""
    return json.dumps(_encode(obj), separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """Decode what ``dumps`` wrote; never runs code."""
    result = json.loads(data, object_hook=_decode_hook)
    if not isinstance(result, dict):
        raise ValueError("a queued request must be a JSON object")
    return result
