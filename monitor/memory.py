"""The cyclic garbage collector against a large, long-lived state.

At 10 k publishers the daemon holds about 600 k GC-tracked objects, and a full collection
walks them all: 0.5 s with the event loop stopped, so every webhook answer (and Janus's one
sampleevh thread) waits. CPython 3.11 has no incremental collector; what it has is
``gc.freeze()``, which moves every tracked object out of the collector's reach.

Right after each full collection, every object left is one it just found reachable: those
are frozen, so the next full collection walks only what came since (milliseconds), however
large the state. Frozen objects are still freed by reference counting the moment they are
dropped; only a reference cycle among them (state is trees; the odd aiohttp connection is
not) would wait, and a full collection of everything every few hours gives those back,
logged with what it found.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("monitor.memory")

# Allocations between young collections (CPython's default is 700). A 100-event batch
# allocates thousands of objects that reference counting frees anyway; at 700 the young
# collections, and the full ones they lead to, ran several times per batch.
YOUNG_THRESHOLD = 10_000
CHECK_INTERVAL = 60.0  # seconds between checks for the thawing collection
FULL_COLLECTION_INTERVAL = 6 * 3600.0


class FrozenHeap:
    """Freezes the survivors of every full collection; now and then thaws and collects all."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        interval: float = FULL_COLLECTION_INTERVAL,
    ) -> None:
        self.monotonic = monotonic
        self.interval = interval
        self.last_full = monotonic()
        self.thawing = False
        self.threshold = gc.get_threshold()

    def install(self) -> None:
        if self._after_collection not in gc.callbacks:
            self.threshold = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, *self.threshold[1:])
            gc.callbacks.append(self._after_collection)

    def uninstall(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
            gc.set_threshold(*self.threshold)
            gc.unfreeze()  # the collector as it was (tests run many daemons in one process)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # At the end of a full collection the young generations are empty and the old one
        # holds exactly what was found reachable.
        if phase == "stop" and info["generation"] == 2 and not self.thawing:
            gc.freeze()

    def tick(self) -> None:
        now = self.monotonic()
        if now - self.last_full >= self.interval:
            self.last_full = now
            self.collect_all()

    def collect_all(self) -> int:
        """A full collection of everything, frozen included; returns what it freed."""
        started = time.perf_counter()
        thawed = gc.get_freeze_count()
        self.thawing = True
        try:
            gc.unfreeze()
            freed = gc.collect()
        finally:
            self.thawing = False
        gc.freeze()
        log.info("gc_full_collection", thawed=thawed, freed=freed,
                 duration_ms=round((time.perf_counter() - started) * 1000, 1))  # fmt: skip
        return freed
