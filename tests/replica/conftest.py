"""Fixtures for the replica tests: replica subprocesses on free ports, stopped by pid.

``start_replica(*args)`` runs ``python -m replica --port 0 ...``, parses the one line it prints
and returns a ``Replica`` handle with small HTTP helpers built on ``http.client`` (no redirects
followed, an explicit allowed User-Agent).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
UA = "tass-crawler/0.1 (+https://example.org/contact)"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
ARTICLES = 400


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    base: str
    host: str = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        assert parts.hostname is not None and parts.port is not None
        self.host, self.port = parts.hostname, parts.port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        ua: str | None = UA,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if ua is not None:
                hdrs["User-Agent"] = ua
            conn.putrequest(method, path, skip_host="Host" in hdrs, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
                conn.putheader("Content-Type", "application/json")
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, data: Any, **kw: Any) -> Reply:
        return self.request("POST", path, body=json.dumps(data).encode(), **kw)

    def truth(self) -> dict[str, Any]:
        reply = self.get("/__replica__/truth")
        assert reply.status == 200
        result: dict[str, Any] = reply.json()
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def launch(*args: str) -> Replica:
    proc = subprocess.Popen(
        [sys.executable, "-m", "replica", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("replica listening on http://127.0.0.1:"):
        proc.kill()
        proc.wait()
        raise AssertionError(f"replica did not start: {line!r}")
    return Replica(proc, line.strip().rsplit(" ", 1)[1])


@contextmanager
def replicas() -> Iterator[Callable[..., Replica]]:
    """A ``launch`` that remembers what it started, and stops all of it on exit."""
    started: list[Replica] = []

    def start(*args: str) -> Replica:
        rep = launch(*args)
        started.append(rep)
        return rep

    try:
        yield start
    finally:
        for rep in started:
            rep.stop()


@pytest.fixture(scope="session")
def start_replica() -> Iterator[Callable[..., Replica]]:
    """Start extra replicas; all are stopped at the end of the session."""
    with replicas() as start:
        yield start


@pytest.fixture
def start_replica_here() -> Iterator[Callable[..., Replica]]:
    """Like ``start_replica``, but the replicas stop when the test ends."""
    with replicas() as start:
        yield start


@pytest.fixture(scope="session")
def replica(start_replica: Callable[..., Replica]) -> Replica:
    """The shared replica: 400 articles, seed 7, day 0, hostile pages on. Do not advance it."""
    return start_replica("--articles", str(ARTICLES), "--seed", "7")


@pytest.fixture(scope="session")
def truth(replica: Replica) -> dict[str, Any]:
    return replica.truth()
