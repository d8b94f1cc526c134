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
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import Any

import structlog

from monitor import logs
from monitor.decode.batch import decode_batch, decode_pending
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
    pending: int = 0  # events whose bodies are decoded at commit (decode.batch.PendingMedia)

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
                events, notes, pending = clean
                result = BatchResult(notes=notes, pending=pending)
                emitters = set(map(_EMITTER_OF, events))
                if len(emitters) == 1 and self.state.admit(events[0].emitter, self.monotonic()):
                    result.emitters = emitters  # one emitter, admitted: asked once
                    result.events, result.accepted = events, len(events)
                else:  # a refusal is counted per item
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
        if result.pending:
            result.pending = 0
            # Answered as accepted, then lost to a decoder bug: counted as our error.
            self._lost("event_decode_failed", decode_pending(result.events, result.notes))
        failed = self.state.apply_all(result.events, self.monotonic())
        self._lost("event_apply_failed", failed)
        events = result.events
        if failed:
            skip = {id(event) for event, _ in failed}
            events = [event for event in events if id(event) not in skip]
        only = next(iter(result.emitters)) if len(result.emitters) == 1 else None
        count_events(stats, events, self.wall() * 1_000_000, only)
        unknown = stats.events_unknown
        for what, count in result.notes.unknown.items():
            unknown[what] = unknown.get(what, 0) + count
        result.events = []

    def _lost(self, what: str, failed: list[tuple[Event, Exception]]) -> None:
        for event, error in failed:
            log.error(
                what,
                server=event.emitter,
                type=event.type_label,
                exc_info=(type(error), error, error.__traceback__),
            )
            self.telemetry.reject("internal_error")

    def _reject(self, result: BatchResult, index: int, reason: str, message: str) -> None:
        result.rejected += 1
        self.telemetry.reject(reason)
        if len(result.errors) < MAX_ERRORS_REPORTED:
            result.errors.append({"index": index, "error": message})


def count_events(
    stats: Telemetry, events: list[Event], wall_us: float, emitter: str | None = None
) -> None:
    """Count applied events per emitter and type, and their lag into each emitter's histogram;
    ``emitter``: the one emitter of all the events, when the caller knows it.

    Per run of one emitter (a batch has one or few), in C where it can be: the types through
    a Counter, and the lags in timestamp space: the stamps sorted once, each bucket's count
    found by one bisect at its oldest stamp (up to the first bucket that holds them all), and
    the sum from the stamps' sum, with no Python arithmetic per event (a loop over the events
    was 0.8 us each)."""
    received = stats.events_received
    whole_us = int(wall_us)
    part_us = wall_us - whole_us
    runs: Iterable[tuple[str, list[Event]]] = (
        ((emitter, events),)
        if emitter is not None
        else ((name, list(grouped)) for name, grouped in groupby(events, _EMITTER_OF))
    )
    for name, run in runs:
        for event_type, count in Counter(map(_TYPE_OF, run)).items():
            key = (name, TYPE_LABELS.get(event_type, UNKNOWN_TYPE_LABEL))
            received[key] = received.get(key, 0) + count
        stamps = sorted(filter(None, map(_STAMP_OF, run)))
        if not stamps:
            continue
        histogram = stats.lag(name)
        counts, total, within = histogram.counts, len(stamps), 0
        for index, bound in enumerate(histogram.bounds):
            # lag <= bound: stamped at or after wall - bound (a stamp ahead of us, too)
            upto = total - bisect_left(stamps, wall_us - bound * 1_000_000)
            counts[index] += upto - within
            within = upto
            if within == total:
                break  # the later buckets get none
        else:
            counts[-1] += total - within
        behind = bisect_right(stamps, wall_us)  # a stamp ahead of us (clock skew) lags 0
        # in integers, exact: 100 stamps of 1.7e15 us sum past a float's 53 bits
        lag_us = behind * whole_us - sum(stamps[:behind])
        histogram.total += (lag_us + behind * part_us) / 1_000_000


_EMITTER_OF = attrgetter("emitter")
_TYPE_OF = attrgetter("type")
_STAMP_OF = attrgetter("timestamp")
