"""Signals through which other components ask the frontier for cluster-wide services."""

from __future__ import annotations

#: ``seconds``: the site asked to slow down (``Retry-After`` on 429/503); every worker pauses.
pause_requested = object()

#: ``counts``: ``{stats key: n}`` to add to the run's counters, which every worker adds up in
#: Redis and the run report reads (the spider's extraction counts, ``tass/extract/…``).
run_counts = object()
