"""Item pipelines, one stage per module, in the order clean → validate → dedupe → store.

``ArticleItem`` items are normalised (``clean``), checked (``validate``; an invalid article
becomes a ``PageFailure``), hashed and matched against near-duplicates (``dedupe``) and written to
MongoDB in batches (``store``). ``PageFailure`` items pass every stage untouched until ``store``
records them in the ``failures`` collection. ``schema`` is the stored document (fields,
fingerprints, band keys) that ``dedupe`` and ``store`` share; ``candidates`` and ``minhash`` serve
``dedupe``. From the crawler they take the one MongoDB helper (``crawler.mongo``: one client per
crawler, shared by the stages), every default (``crawler.defaults``), the site-text rules
(``crawler.text``) and the batcher (``crawler.batch``); the crawler imports nothing from here.
"""
