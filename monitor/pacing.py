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

SLICE_SECONDS = 0.001
# Loop turns given away per pause: an answer takes two or three (read and parse, run the
# handler, write), so one turn per slice made a webhook POST wait two or three slices.
TURNS = 3


class Pacer:
    """Yields to the loop when the current slice of loop time is used up."""

    __slots__ = ("deadline", "slice", "yields")

    def __init__(self, slice_seconds: float = SLICE_SECONDS) -> None:
        self.slice = slice_seconds
        self.deadline = time.perf_counter() + slice_seconds
        self.yields = 0

    async def pause(self) -> None:
        if time.perf_counter() >= self.deadline:
            for _ in range(TURNS):
                await asyncio.sleep(0)
            self.yields += 1
            self.deadline = time.perf_counter() + self.slice
