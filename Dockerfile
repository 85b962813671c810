# The crawler image: workers, the scheduler and (in the demo profile) the replica.
# The embedded servers (GPL SecantusDB) are not installed: the stack uses real Redis and MongoDB.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md scrapy.cfg ./
COPY crawler ./crawler
COPY pipelines ./pipelines
COPY replica ./replica
RUN pip install '.[replica]' \
    && useradd --create-home --uid 10001 crawler
USER crawler

CMD ["scrapy", "crawl", "tass", "-a", "mode=worker"]
