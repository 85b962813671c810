"""Scrapy extensions: thin adapters over Scrapy-free cores (``crawler.status``,
``crawler.metrics``): the cluster-wide progress line and the Prometheus endpoint; and the
crawl's stats collector."""
