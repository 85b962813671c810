"""Signals through which other components ask the frontier for cluster-wide services."""

from __future__ import annotations

#: ``seconds``: the site asked to slow down (``Retry-After`` on 429/503); every worker pauses.
pause_requested = object()

#: ``counts``: ``{stats key: n}`` to add to the run's counters, which every worker adds up in
#: Redis and the run report reads (the spider's extraction counts, ``tass/extract/…``).
run_counts = object()

#: ``change``: a ``PageFailure`` with ``retry_at`` (an attempt failed and its retry is about to be
#: queued) or a ``RetrySettled`` (a retried URL answered). The retry middleware sends it with
#: ``send_catch_log_async`` and queues the retry only once the store's handler has returned,
#: that is once MongoDB has the pending retry (``crawler.frontier.recovery`` reads it there).
retry_state = object()

#: ``run_id``: this worker works on a run now (it began or joined it; a standing worker does
#: so once a run). What a component keeps of the database's state for a run starts again
#: there (the store reads anew which URLs have a failures document, ``pipelines.failed``).
run_entered = object()
