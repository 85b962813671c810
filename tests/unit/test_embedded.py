"""The embedded servers start, answer, persist, and are shared by local crawl processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pymongo
import redis

from crawler.embedded import LocalServices, pid_alive


def test_local_services_shared_then_stopped_by_last_user(tmp_path: Path) -> None:
    services = LocalServices(tmp_path / ".tass")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        r1, m1, started1 = services.acquire(user_pid=other.pid)
        r2, m2, started2 = services.acquire()
        assert started1 and not started2
        assert (r1.pid, m1.pid) == (r2.pid, m2.pid)
        client = redis.Redis.from_url(r1.url)
        client.set("k", "v")
        mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(m1.url)
        mongo.db.c.insert_one({"_id": 1})
        mongo.close()
        client.close()
        # The other user is still alive: our release keeps the servers up.
        assert services.release() is False
        assert pid_alive(r1.pid) and pid_alive(m1.pid)
    finally:
        other.kill()
        other.wait()
    # The other user died without releasing: the next release stops the servers.
    services.acquire()
    assert services.release() is True
    assert not pid_alive(r1.pid) and not pid_alive(m1.pid)
    # Data persists for the next run.
    r3, m3, started3 = services.acquire()
    try:
        assert started3
        assert redis.Redis.from_url(r3.url).get("k") == b"v"
        mongo = pymongo.MongoClient(m3.url)
        assert mongo.db.c.find_one({"_id": 1}) == {"_id": 1}
        mongo.close()
    finally:
        services.release()


def test_redis_and_mongo_fixtures_are_real(redis_client: redis.Redis, mongo_db, key_prefix) -> None:
    redis_client.set(f"{key_prefix}:x", "1")
    assert redis_client.incr(f"{key_prefix}:x") == 2
    mongo_db.c.insert_one({"_id": 7, "a": [1, 2]})
    assert mongo_db.c.find_one({"a": 2})["_id"] == 7
