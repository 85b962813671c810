"""Custom scrapy commands: ``scrapy schedule`` (the nightly scheduler), ``scrapy report``."""
