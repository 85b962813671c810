# The crawler image: workers, the scheduler and (in the demo profile) the replica.
# The embedded servers (GPL SecantusDB) are not installed: the stack uses real Redis and MongoDB.
#
# Layers, from the least to the most often changed: the user and data folder, then every
# dependency from the lock file (requirements.lock: `make lock`, pinned with hashes), then the
# code. A change to the code alone rebuilds only the last layers; nothing is reinstalled.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# TASS_DATA_DIR: the store's spill folder, owned by the crawler user; docker-compose.yml keeps
# it in the crawler-data volume (a new named volume takes this folder's owner).
RUN useradd --create-home --uid 10001 crawler \
    && install -d -o crawler -g crawler -m 0750 /var/lib/tass-crawler

WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The code runs from /app (on PYTHONPATH, and Scrapy finds scrapy.cfg here); it is compiled
# now because the crawler user cannot write __pycache__ under /app.
COPY scrapy.cfg ./
COPY crawler ./crawler
COPY pipelines ./pipelines
COPY replica ./replica
RUN python -m compileall -q crawler pipelines replica
ENV PYTHONPATH=/app \
    TASS_DATA_DIR=/var/lib/tass-crawler
VOLUME /var/lib/tass-crawler

USER crawler
CMD ["scrapy", "crawl", "tass", "-a", "mode=worker"]
