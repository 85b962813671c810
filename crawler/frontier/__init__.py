"""The shared URL frontier in Redis: leases, acknowledgements, retries, politeness, runs.

Where to look:
- ``scheduler``: the Scrapy scheduler of each worker (local buffer, outbox, acks).
- ``queue`` and ``lua``: the queue in Redis, every change one atomic script.
- ``codec``: requests as compact JSON (never pickle: a Redis write must not run code).
- ``retry``: retries with backoff through the frontier, ``Retry-After`` pauses the cluster.
- ``run`` and ``lifecycle``: one run at a time, seeded once, finished once, then reported.
- ``keys``, ``config``, ``redis``: key names, settings, the client.
"""
