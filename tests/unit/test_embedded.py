"""The embedded servers start, answer, persist, and are shared by local crawl processes."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest
import redis

from crawler.embedded import PASSWORD_FILE, LocalServices, pid_alive


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


def test_the_local_valkey_requires_a_generated_password_kept_in_the_data_dir(
    tmp_path: Path,
) -> None:
    """Issue 11 item 9: no ``--protected-mode no`` and no open door; the password is generated
    once, kept private under TASS_DATA_DIR and used again by the next run."""
    root = tmp_path / ".tass"
    services = LocalServices(root)
    r1, _, _ = services.acquire()
    try:
        password_file = root / PASSWORD_FILE
        password = password_file.read_text().strip()
        assert len(password) >= 32
        for private in (password_file, root / "services.json", root / "redis" / "valkey.conf"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        cmdline = Path(f"/proc/{r1.pid}/cmdline").read_bytes().decode().split("\0")
        assert "--protected-mode" not in cmdline and password not in " ".join(cmdline)
        anonymous = redis.Redis(host="127.0.0.1", port=r1.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()
        assert r1.url == f"redis://:{password}@127.0.0.1:{r1.port}/0"
        client = redis.Redis.from_url(r1.url)
        client.set("k", "v")
        client.close()
    finally:
        assert services.release() is True
    r2, _, started = services.acquire()
    try:
        assert started and (root / PASSWORD_FILE).read_text().strip() == password
        assert redis.Redis.from_url(r2.url).get("k") == b"v"
    finally:
        services.release()
