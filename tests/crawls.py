"""Real crawls: the replica over HTTP, worker processes, real Redis and MongoDB servers.

``CrawlEnv`` gives each test its own Redis key prefix and MongoDB database; ``run_workers``
starts ``scrapy crawl tass`` processes with the real settings, overriding only addresses and
timeouts, and waits for them. Used by the integration and chaos tests.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
import pytest
import redis

from crawler.embedded import ServerProcess
from replica.launch import ReplicaProcess

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CrawlEnv:
    """Where one test's crawl goes: servers, prefix, database, replica, log folder."""

    replica: ReplicaProcess
    redis_url: str
    mongo_uri: str
    prefix: str
    database: str
    logs: Path
    clients: list[pymongo.MongoClient[dict[str, Any]]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "TASS_BASE_URL": self.replica.base_url,
            "REDIS_URL": self.redis_url,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DATABASE": self.database,
            "TASS_REDIS_PREFIX": self.prefix,
            "CRAWL_RATE": "2000",
            "CONCURRENT_REQUESTS": "16",
            "CRAWL_CONCURRENCY": "64",
            "TASS_RETRY_BACKOFF": "0.2",
            "TASS_IDLE_GRACE": "1.0",
            "DOWNLOAD_TIMEOUT": "20",
            "LOG_LEVEL": "INFO",
            **extra,
        }

    def start_worker(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "scrapy", "crawl", "tass", *args],
                cwd=REPO,
                env=self.env(**extra),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def run_workers(self, count: int, *args: str, timeout: float = 600, **extra: str) -> list[int]:
        procs = [self.start_worker(f"worker-{i}", *args, **extra) for i in range(count)]
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                codes.append(-9)
        return codes

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def missing_articles(self) -> list[int]:
        """The replica's reachable articles that are not stored (none, after a complete run)."""
        reachable = {a["id"] for a in self.replica.truth()["articles"] if a["reachable"]}
        stored = {d["_id"] for d in self.db().articles.find({}, {"_id": 1})}
        return sorted(reachable - stored)

    def close_clients(self) -> None:
        """Close the clients ``db`` made: before stopping a test's own MongoDB server, as
        pymongo's ``close`` waits out server selection (5 s) to end its sessions on a server
        that is gone."""
        for open_client in self.clients:
            open_client.close()
        self.clients.clear()

    def db(self) -> pymongo.database.Database[dict[str, Any]]:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self.clients.append(client)
        return client[self.database]


@pytest.fixture
def crawl_env_factory(
    redis_server: ServerProcess, mongo_server: ServerProcess, tmp_path: Path
) -> Iterator[Any]:
    """``make(replica, redis_url=None, mongo_uri=None)``: a crawl environment of its own."""
    with crawl_envs(redis_server, mongo_server, tmp_path) as make:
        yield make


@contextlib.contextmanager
def crawl_envs(
    redis_server: ServerProcess, mongo_server: ServerProcess, tmp_path: Path
) -> Iterator[Any]:
    """What ``crawl_env_factory`` gives, for a fixture of any scope; cleans up at the end."""
    made: list[CrawlEnv] = []

    def make(
        replica: ReplicaProcess, redis_url: str | None = None, mongo_uri: str | None = None
    ) -> CrawlEnv:
        name = uuid.uuid4().hex[:10]
        logs = tmp_path / f"logs-{name}"
        logs.mkdir()
        env = CrawlEnv(
            replica,
            redis_url or redis_server.url,
            mongo_uri or mongo_server.url,
            f"it-{name}",
            f"it_{name}",
            logs,
        )
        made.append(env)
        return env

    yield make
    for env in made:
        env.close_clients()
        # A test's own servers may already be stopped: nothing left to clean there.
        client = redis.Redis.from_url(env.redis_url, socket_connect_timeout=2)
        try:
            keys = list(client.scan_iter(match=f"{env.prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.ConnectionError:
            pass
        finally:
            client.close()
        mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            env.mongo_uri, serverSelectionTimeoutMS=2000
        )
        try:
            mongo.drop_database(env.database)
        except pymongo.errors.ServerSelectionTimeoutError:
            pass
        finally:
            mongo.close()
