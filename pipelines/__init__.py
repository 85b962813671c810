"""Item pipelines, one stage per module, in the order clean → validate → dedupe → store.

``ArticleItem`` items are normalised (``clean``), checked (``validate``; an invalid article
becomes a ``PageFailure``), hashed and matched against near-duplicates (``dedupe``) and written to
MongoDB in batches (``store``). ``PageFailure`` items pass every stage untouched until ``store``
records them in the ``failures`` collection. ``mongo`` builds the one MongoDB client that
``dedupe`` and ``store`` share within a crawler; ``defaults`` holds every default in one place.
"""
