"""The shared URL frontier in Redis: queue, request-level dedupe and run coordination.

- ``keys``: every Redis key name, under one prefix.
- ``serializer``: requests stored as JSON (never pickle: a Redis write must not run code).
- ``dupefilter``: article ids in a bitmap (kept across runs), hub fingerprints per run.
- ``scheduler``: scrapy-redis's scheduler, made to never delete shared state.
- ``run``: which run is going on, who seeds it, worker heartbeats, when it is finished.
"""
