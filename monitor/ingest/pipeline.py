"""Decoded items -> state: the one path both receivers use, with its counters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor.events import DecodeError, DecodeNotes, decode_event
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
        state, stats = self.state, self.stats
        received = stats.events_received
        now = self.monotonic()
        wall_us = self.wall() * 1_000_000
        for index, raw in enumerate(items):
            try:
                event = decode_event(raw, notes)
            except DecodeError as exc:
                self._reject(result, index, "invalid_event", str(exc))
                continue
            emitter = event.emitter
            if not state.accepts_emitter(emitter):
                self._reject(
                    result,
                    index,
                    "unknown_emitter_limit",
                    "too many emitters that are not configured targets "
                    "(limits.max_unknown_emitters)",
                )
                continue
            try:
                state.apply(event, now)
            except Exception:
                # A bug must not cost the rest of the batch, nor the daemon.
                log.exception("event_apply_failed", server=emitter, type=event.type_label)
                self._reject(result, index, "internal_error", "event could not be applied")
                continue
            key = (emitter, event.type_label)
            received[key] = received.get(key, 0) + 1
            if event.timestamp:
                stats.lag(emitter).observe(max(0.0, (wall_us - event.timestamp) / 1_000_000))
            result.accepted += 1
            result.emitters.add(emitter)
        for what, count in notes.unknown.items():
            stats.events_unknown[what] = stats.events_unknown.get(what, 0) + count
        return result

    def _reject(self, result: BatchResult, index: int, reason: str, message: str) -> None:
        result.rejected += 1
        self.stats.reject(reason)
        if len(result.errors) < MAX_ERRORS_REPORTED:
            result.errors.append({"index": index, "error": message})
