"""Whether this worker can reach Redis, and what counts as Redis being away.

Every Redis call of the frontier runs on an asyncio task; when it fails with ``transient``
(Redis or the network away, Redis busy) the caller marks Redis down (logged once), retries
with backoff (``crawler.retrying``) and holds its work; the first success marks it up again. The run
lifecycle never ends a run while Redis is down: an unknown state is not an idle one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    TimeoutError,
    TryAgainError,
)

from crawler.errors import is_auth_error

logger = logging.getLogger(__name__)

# Answers of a Redis that is there but cannot take the call now: full (``maxmemory``,
# ``noeviction``), loading its data, a replica during a failover, a cluster reconfiguring.
_BUSY = (
    OutOfMemoryError, BusyLoadingError, ReadOnlyError, TryAgainError, MasterDownError,
    ClusterDownError,
)  # fmt: skip


def transient(exc: BaseException) -> bool:
    """True for a failure that a later try may not meet: Redis or the network away, or Redis
    busy. Refused credentials and every other error Redis answers (a bug, a wrong key type)
    are not: retrying them would hang the worker, so they stop it."""
    if is_auth_error(exc):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, OSError, *_BUSY))


class RedisHealth:
    """Up or down, as the last Redis call of this worker found it."""

    def __init__(self, on_error: Callable[[], None] | None = None) -> None:
        self.ok = True
        self._on_error = on_error

    def down(self, exc: BaseException) -> None:
        if self.ok:
            logger.warning("Redis unreachable (%s): holding work and retrying", exc)
        self.ok = False
        if self._on_error is not None:
            self._on_error()

    def up(self) -> None:
        if not self.ok:
            logger.info("Redis reachable again: carrying on")
        self.ok = True

    def retrying(self, what: str, deadline: Callable[[], float] | None = None) -> dict[str, Any]:
        """The frontier's retry policy for one Redis call (``crawler.retrying.retry``'s
        arguments): transient errors only, backoff 0.5 s doubling to 5 s, health marked down
        on each failure; until ``deadline`` (None: while the task lives)."""
        return {
            "what": what,
            "retry_on": transient,
            "on_retry": self.down,
            "deadline": deadline,
            "initial": 0.5,
            "maximum": 5.0,
            "jitter": False,
            "log": False,
        }
