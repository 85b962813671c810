"""Signals through which other components ask the frontier for cluster-wide politeness."""

from __future__ import annotations

#: ``seconds``: the site asked to slow down (``Retry-After`` on 429/503); every worker pauses.
pause_requested = object()
