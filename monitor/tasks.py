"""Stopping background tasks for sure: a stop must end, even when a library swallowed the
cancel (some aio-pika/aiormq calls turn a CancelledError into another exception)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

log = structlog.get_logger("monitor.tasks")

RECANCEL_EVERY = 0.5  # seconds: a cancel that was swallowed is sent again this often


def cancelling() -> bool:
    """True once the current task was asked to stop: a retry loop that catches Exception must
    check this, or a swallowed cancel lets it loop on and the stop waits for it forever."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_tasks(tasks: Iterable[asyncio.Task[None]], within: float) -> bool:
    """Cancel the tasks and wait for them, cancelling again every RECANCEL_EVERY, for at most
    ``within`` seconds; then log the ones left and return False rather than hang the stop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.error("tasks_not_stopped", tasks=sorted(t.get_name() for t in pending))
            return False
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, left))
    return True
