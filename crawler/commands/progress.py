"""Progress of a long command on standard error: a bar on a terminal (tqdm), else a line every
``every`` seconds (a log file or a pipe gets no control characters)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any, Self

from tqdm import tqdm


class Progress:
    """``update(done)`` with the count so far; ``total`` may be None (unknown)."""

    def __init__(
        self,
        what: str,
        total: int | None,
        *,
        unit: str = "it",
        stream: IO[str] | None = None,
        every: float = 10.0,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.every = every
        self.done = 0
        self._started = time.monotonic()
        self._shown = self._started
        self._bar: tqdm[Any] | None = None
        if self.stream.isatty():
            self._bar = tqdm(total=total, desc=what, unit=unit, file=self.stream, leave=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int) -> None:
        """The count is now ``done``."""
        step, self.done = done - self.done, done
        if self._bar is not None:
            self._bar.update(step)
            return
        now = time.monotonic()
        if now - self._shown >= self.every:
            self._shown = now
            self._line(now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._line(time.monotonic())

    def _line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        rate = self.done / elapsed
        print(
            f"{self.what}: {self.done}{of} {self.unit} ({rate:.0f} {self.unit}/s)",
            file=self.stream,
            flush=True,
        )
