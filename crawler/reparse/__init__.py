"""``scrapy reparse``: re-extract archived pages with the current code (``job``: the Redis
side, ``worker``: one process's share)."""
