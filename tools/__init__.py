"""Tools that stand above the crawler and the replica: ``python -m tools.demo`` (``make demo``).

The crawler imports nothing from the replica and the replica nothing from the crawler; what needs
both (the offline demo) lives here.
"""
