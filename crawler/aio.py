"""Stopping background tasks for good.

A task cancelled while it is inside a Redis call may not end: the cancellation can be lost on
its way through the client's own timeouts (seen with redis-py 8.1 on Python 3.11: a lease
window's renew loop went on sleeping after ``cancel()``, and ``gather`` on it waited forever,
as did every test that closed the window under load). ``stop`` cancels again until the tasks
are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

STOP_POLL = 0.2
"""Seconds between two cancellations of a task that has not ended yet."""


async def stop(tasks: Iterable[asyncio.Task[None] | None]) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their errors are not raised)."""
    pending = {task for task in tasks if task is not None and not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=STOP_POLL)
