"""The shared URL frontier in Redis: leases, acknowledgements, retries, politeness, runs.

Scrapy adapters (thin: each forwards to the core in a few lines):
- ``scheduler``: Scrapy's scheduler interface and the frontier's signals; builds the core.
- ``middleware``: drops article links this worker knows are queued.
- ``retry``: retries with backoff through the frontier, ``Retry-After`` pauses the cluster.
- ``politeness``: the download handler that waits for the cluster's send budget.

The Scrapy-free core (unit-tested against a real Redis):
- ``window``: one worker's leases, requests in flight, and its batched queue writes.
- ``lifecycle``: one run at a time, seeded once, finished once, then reported; the
  ``RunSpider`` protocol a spider implements and the ``RunScope`` it is handed.
- ``queue`` and ``lua``: the queue in Redis, every change one atomic script; ``run``: runs.
- ``versions`` and ``recheck``: change detection per article (what the feeds say of each
  article's version against the version stored) and the measured re-check.
- ``siteslots``: one worker's requests at the site (places and send times, one call).
- ``known``, ``health``, ``counters``: the seen-articles copy, Redis health, stats deltas.
- ``codec``: requests as compact JSON (never pickle: a Redis write must not run code).
- ``keys``, ``config``, ``redis``, ``report``: key names, settings, the client, the run report.
"""
