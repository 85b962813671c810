"""Custom scrapy commands: ``scrapy schedule`` (the nightly scheduler), ``scrapy report``
(what the store holds), ``scrapy replay`` (dead letters back into the queue)."""
