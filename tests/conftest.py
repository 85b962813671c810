"""Session fixtures: real Redis- and MongoDB-protocol servers on free loopback ports.

Each server is started once per test session and stopped by pid. Tests never flush a whole
server: each test gets its own Redis key prefix and its own MongoDB database, and cleans up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
import redis

from crawler.embedded import ServerProcess, start_mongo, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_mongo(tmp_path_factory.mktemp("mongo"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: ServerProcess) -> str:
    return redis_server.url


@pytest.fixture
def mongo_uri(mongo_server: ServerProcess) -> str:
    return mongo_server.url


@pytest.fixture
def key_prefix(redis_server: ServerProcess) -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client(redis_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def mongo_db_name(mongo_server: ServerProcess) -> Iterator[str]:
    """A MongoDB database of this test's own; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_server.url)
    client.drop_database(name)
    client.close()


@pytest.fixture
def mongo_db(
    mongo_server: ServerProcess, mongo_db_name: str
) -> Iterator[pymongo.database.Database[dict[str, object]]]:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_server.url)
    yield client[mongo_db_name]
    client.close()


REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the in-process reactor's threads, if a test started it (``tests.inprocess``)."""
    from tests import inprocess

    inprocess.shutdown()


from tests.crawls import crawl_env_factory  # noqa: E402, F401  (the crawl fixture)
