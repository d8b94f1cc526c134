"""Decoded items -> state: the one path both receivers use, with its counters.

This is the webhook hot path (every event of every POST): per-batch work is hoisted out of
the loop, and per-emitter lookups are cached while consecutive events share an emitter.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor.events import TYPE_LABELS, UNKNOWN_TYPE_LABEL, DecodeError, DecodeNotes, decode_event
from monitor.metrics import Stats
from monitor.state import State

MAX_ERRORS_REPORTED = 10

log = structlog.get_logger("monitor.ingest")


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    emitters: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"accepted": self.accepted, "rejected": self.rejected}
        if self.errors:
            body["errors"] = self.errors
        return body


class Pipeline:
    """Validates items one by one: the good items of a bad batch are kept."""

    def __init__(
        self,
        state: State,
        stats: Stats,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.stats = stats
        self.monotonic = monotonic
        self.wall = wall

    def ingest(self, items: list[Any]) -> BatchResult:
        result = BatchResult()
        notes = DecodeNotes()
        apply = self.state.apply
        now = self.monotonic()
        wall_us = self.wall() * 1_000_000
        per_emitter: dict[str, dict[int, int]] = {}  # emitter -> type code -> accepted
        emitter: str | None = None
        counts: dict[int, int] = {}
        lag_bounds: tuple[float, ...] = ()
        lag_counts: list[int] = []
        lag_total = 0.0
        for index, raw in enumerate(items):
            try:
                event = decode_event(raw, notes)
            except DecodeError as exc:
                self._reject(result, index, "invalid_event", str(exc))
                continue
            if event.emitter != emitter:
                if emitter is not None:
                    self.stats.lag(emitter).total += lag_total
                    lag_total = 0.0
                emitter = event.emitter
                if not self.state.accepts_emitter(emitter):
                    emitter = None
                    self._reject(
                        result,
                        index,
                        "unknown_emitter_limit",
                        "too many emitters that are not configured targets "
                        "(limits.max_unknown_emitters)",
                    )
                    continue
                counts = per_emitter.setdefault(emitter, {})
                histogram = self.stats.lag(emitter)
                lag_bounds, lag_counts = histogram.bounds, histogram.counts
            try:
                apply(event, now)
            except Exception:
                # A bug must not cost the rest of the batch, nor the daemon.
                log.exception("event_apply_failed", server=emitter, type=event.type_label)
                self._reject(result, index, "internal_error", "event could not be applied")
                continue
            event_type = event.type
            counts[event_type] = counts.get(event_type, 0) + 1
            if event.timestamp:
                lag = (wall_us - event.timestamp) / 1_000_000
                if lag < 0.0:
                    lag = 0.0
                lag_counts[bisect_left(lag_bounds, lag)] += 1
                lag_total += lag
        if emitter is not None:
            self.stats.lag(emitter).total += lag_total
        received = self.stats.events_received
        for name, by_type in per_emitter.items():
            for event_type, count in by_type.items():
                key = (name, TYPE_LABELS.get(event_type, UNKNOWN_TYPE_LABEL))
                received[key] = received.get(key, 0) + count
                result.accepted += count
            if by_type:
                result.emitters.add(name)
        unknown = self.stats.events_unknown
        for what, count in notes.unknown.items():
            unknown[what] = unknown.get(what, 0) + count
        return result

    def _reject(self, result: BatchResult, index: int, reason: str, message: str) -> None:
        result.rejected += 1
        self.stats.reject(reason)
        if len(result.errors) < MAX_ERRORS_REPORTED:
            result.errors.append({"index": index, "error": message})
