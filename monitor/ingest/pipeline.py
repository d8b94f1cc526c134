"""Decoded items -> state: the one path both receivers use, with its counters.

Two steps, so the answer to Janus does not wait for the state update: ``ingest`` validates and
decodes every item (the answer reports exactly what was accepted), ``commit`` applies the
accepted events to state and counts them. Receivers answer in between: sampleevh sends one
POST at a time from one thread and its queue grows while we are slow.

This is the webhook hot path (every event of every POST): per-batch work is hoisted out of
the loops, and per-emitter lookups are cached while consecutive events share an emitter.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor import logs
from monitor.decode.batch import decode_batch
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeError, DecodeNotes
from monitor.decode.records import TYPE_LABELS, UNKNOWN_TYPE_LABEL, Event
from monitor.ingest.body import MAX_ITEMS, MAX_VALUES, parse_items
from monitor.state import State
from monitor.telemetry import Telemetry

MAX_ERRORS_REPORTED = 10

log = structlog.get_logger("monitor.ingest")


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    emitters: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)  # accepted, waiting for commit
    notes: DecodeNotes = field(default_factory=DecodeNotes)

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
        telemetry: Telemetry,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.telemetry = telemetry
        self.monotonic = monotonic
        self.wall = wall

    def process(self, items: list[Any]) -> BatchResult:
        """ingest then commit at once, for callers that answer nobody."""
        result = self.ingest(items)
        self.commit(result)
        return result

    def ingest_body(self, data: bytes | str) -> BatchResult:
        """Decode a received body (raises BodyError when it is refused as a whole): a clean
        batch in one typed pass, any other item by item."""
        if len(data) <= MAX_VALUES:  # longer ones are counted before they are parsed
            clean = decode_batch(data)
            if clean is not None and len(clean[0]) <= MAX_ITEMS:
                events, notes = clean
                result = BatchResult(notes=notes)
                self._keep(result, enumerate(events))
                return result
        return self.ingest(parse_items(data))

    def ingest(self, items: list[Any]) -> BatchResult:
        """Decode every item; what is accepted waits in the result for ``commit``."""
        result = BatchResult()
        notes = result.notes
        decoded: list[tuple[int, Event]] = []
        crashed: list[int] = []
        for index, raw in enumerate(items):
            try:
                event = decode_event(raw, notes)
            except DecodeError as exc:
                self._reject(result, index, "invalid_event", str(exc))
                continue
            except Exception:  # a decoder bug: this item is lost, not the batch
                if not crashed:  # one traceback per batch, however many items hit the bug
                    log.exception("event_decode_failed", index=index)
                crashed.append(index)
                self._reject(result, index, "invalid_event", "event could not be decoded")
                continue
            decoded.append((index, event))
        self._keep(result, decoded)
        result.errors.sort(key=lambda error: error["index"])  # admission's come after decoding's
        if len(crashed) > 1:
            log.error("event_decode_failed_batch", failed=len(crashed), first_index=crashed[0])
        return result

    def _keep(self, result: BatchResult, decoded: Iterable[tuple[int, Event]]) -> None:
        """The decoded events whose emitter state admits, in order; the others rejected."""
        kept = result.events
        admitted: str | None = None  # runs of one emitter are asked about once
        for index, event in decoded:
            if event.emitter != admitted:
                if not self._admits(result, index, event.emitter):
                    continue
                admitted = event.emitter
            kept.append(event)
        result.accepted = len(kept)

    def _admits(self, result: BatchResult, index: int, emitter: str) -> bool:
        """Whether state takes events from this emitter; the item is rejected if not."""
        if not self.state.admit(emitter, self.monotonic()):
            self._reject(
                result,
                index,
                "unknown_emitter_limit",
                "too many emitters that are not configured targets (limits.max_unknown_emitters)",
            )
            return False
        result.emitters.add(emitter)
        return True

    def after_answer(self, result: BatchResult, log_fields: dict[str, Any]) -> None:
        """What a receiver defers until its answer is on the wire: commit, then log the batch."""
        self.commit(result)
        if logs.enabled("info"):
            log.info(
                "webhook_batch",
                status=200,
                servers=sorted(result.emitters),
                accepted=result.accepted,
                rejected=result.rejected,
                **log_fields,
            )

    def commit(self, result: BatchResult) -> None:
        """Apply accepted events to state, in order, and count them."""
        stats = self.telemetry
        failed = self.state.apply_all(result.events, self.monotonic())
        for event, error in failed:
            log.error(
                "event_apply_failed",
                server=event.emitter,
                type=event.type_label,
                exc_info=(type(error), error, error.__traceback__),
            )
            stats.reject("internal_error")
        wall_us = self.wall() * 1_000_000
        per_emitter: dict[str, dict[int, int]] = {}  # emitter -> type code -> accepted
        emitter: str | None = None
        counts: dict[int, int] = {}
        lag_bounds: tuple[float, ...] = ()
        lag_counts: list[int] = []
        lag_total = 0.0
        skip = {id(event) for event, _ in failed}
        for event in result.events:
            if skip and id(event) in skip:
                continue
            if event.emitter != emitter:
                if emitter is not None:
                    stats.lag(emitter).total += lag_total
                    lag_total = 0.0
                emitter = event.emitter
                counts = per_emitter.setdefault(emitter, {})
                histogram = stats.lag(emitter)
                lag_bounds, lag_counts = histogram.bounds, histogram.counts
            event_type = event.type
            counts[event_type] = counts.get(event_type, 0) + 1
            if event.timestamp:
                lag = (wall_us - event.timestamp) / 1_000_000
                if lag < 0.0:
                    lag = 0.0
                lag_counts[bisect_left(lag_bounds, lag)] += 1
                lag_total += lag
        if emitter is not None:
            stats.lag(emitter).total += lag_total
        received = stats.events_received
        for name, by_type in per_emitter.items():
            for event_type, count in by_type.items():
                key = (name, TYPE_LABELS.get(event_type, UNKNOWN_TYPE_LABEL))
                received[key] = received.get(key, 0) + count
        unknown = stats.events_unknown
        for what, count in result.notes.unknown.items():
            unknown[what] = unknown.get(what, 0) + count
        result.events = []

    def _reject(self, result: BatchResult, index: int, reason: str, message: str) -> None:
        result.rejected += 1
        self.telemetry.reject(reason)
        if len(result.errors) < MAX_ERRORS_REPORTED:
            result.errors.append({"index": index, "error": message})
