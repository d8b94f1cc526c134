"""Long walks over state that share the event loop with ingest.

A /metrics scrape or an API answer over 10 k publishers is 100+ ms of Python; run in one go it
holds every webhook answer (and Janus's one sampleevh thread) that long. Walks call
``await pacer.pause()`` between items instead: it yields to the loop once a slice of loop time
is used, so ingest waits a slice at most. State may change between slices, so a paced walk
iterates over a snapshot (``list(d.items())``) and skips what vanished since.
"""

from __future__ import annotations

import asyncio
import time

SLICE_SECONDS = 0.002


class Pacer:
    """Yields to the loop when the current slice of loop time is used up."""

    __slots__ = ("deadline", "slice", "yields")

    def __init__(self, slice_seconds: float = SLICE_SECONDS) -> None:
        self.slice = slice_seconds
        self.deadline = time.perf_counter() + slice_seconds
        self.yields = 0

    async def pause(self) -> None:
        if time.perf_counter() >= self.deadline:
            await asyncio.sleep(0)
            self.yields += 1
            self.deadline = time.perf_counter() + self.slice
