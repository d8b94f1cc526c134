"""Stopping background tasks: a swallowed cancel is sent again, and a stop is bounded."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from monitor.tasks import cancelling, stop_tasks


async def stubborn(swallow: list[int]) -> None:
    """Turns the next ``swallow[0]`` cancels into a retry, as a library that eats them would."""
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if swallow[0] == 0:
                raise
            swallow[0] -= 1


async def test_a_swallowed_cancel_is_sent_again_until_the_task_ends() -> None:
    """A task that ignores its first two cancels is stopped by the third, within the bound."""
    task = asyncio.create_task(stubborn([2]))
    await asyncio.sleep(0)
    assert await stop_tasks([task], within=3.0)
    assert task.cancelled()


async def test_a_task_that_will_not_stop_is_logged_and_left_when_the_bound_passes() -> None:
    """Past ``within``, stop_tasks returns False and names the task; it does not hang."""
    swallow = [1000]
    task = asyncio.create_task(stubborn(swallow), name="stuck-one")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        assert not await stop_tasks([task], within=0.2)
    assert [(e["event"], e["tasks"]) for e in logs] == [("tasks_not_stopped", ["stuck-one"])]
    swallow[0] = 0
    assert await stop_tasks([task], within=1.0)


async def test_cancelling_tells_a_retry_loop_that_a_stop_was_asked() -> None:
    """Inside a task being cancelled, cancelling() is True even after the CancelledError was
    turned into another exception."""
    seen: list[bool] = []

    async def loop() -> None:
        seen.append(cancelling())
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        seen.append(cancelling())

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    assert seen == [False, True]
