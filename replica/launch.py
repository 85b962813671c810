"""Start the replica in a child process and learn its address (for tests, the demo, benches).

The replica binds the port it is given (0: any free port) and prints
``replica listening on http://127.0.0.1:<port>`` as its first line; ``ReplicaProcess`` reads
that line, so nothing races for ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LISTENING = re.compile(r"replica listening on (http://\S+)")

USER_AGENT = "tass-crawler-tests/0.1 (+https://github.com/tass-crawler/tass-crawler)"


@dataclass
class ReplicaProcess:
    """A running replica: its base URL, its ground truth file and its process."""

    articles: int = 500
    seed: int = 7
    extra_args: list[str] = field(default_factory=list)
    truth_path: Path | None = None
    base_url: str = ""
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120.0) -> ReplicaProcess:
        argv = [
            sys.executable, "-m", "replica",
            "--port", "0",
            "--articles", str(self.articles),
            "--seed", str(self.seed),
            *self.extra_args,
        ]  # fmt: skip
        if self.truth_path is not None:
            argv += ["--truth", str(self.truth_path)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=None, text=True, start_new_session=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = _LISTENING.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"the replica did not start: {line!r}")
        self.base_url = match.group(1).rstrip("/")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def get_json(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.base_url + path, method=method, headers={"User-Agent": USER_AGENT}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def truth(self) -> dict[str, Any]:
        """The ground truth for the site as it is now."""
        result: dict[str, Any] = self.get_json("/__replica__/truth")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json("/__replica__/stats")
        return result

    def advance(self, days: int = 1) -> dict[str, Any]:
        """Move the site ``days`` forward (new articles, edits); returns the day and size."""
        result: dict[str, Any] = self.get_json(f"/__replica__/advance?days={days}", "POST")
        return result

    def switch(self, **switches: object) -> dict[str, Any]:
        """Change switches while it runs, e.g. ``switch(markup="alt")`` for a "redesign";
        returns the switches now in force (a bad one raises ``urllib.error.HTTPError`` 400)."""
        query = urllib.parse.urlencode(switches)
        result: dict[str, Any] = self.get_json(f"/__replica__/switches?{query}", "POST")
        return result

    def __enter__(self) -> ReplicaProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
