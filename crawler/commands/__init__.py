"""Custom scrapy commands: ``scrapy schedule`` (the nightly scheduler), ``scrapy report``
(what the store holds), ``scrapy replay`` (dead letters back into the queue), ``scrapy
reparse`` (archived pages through the current extraction code), ``scrapy export`` (the
archive as a file). ``servers`` and ``progress`` are their shared helpers."""
