"""The fast path decodes a clean batch exactly as the per-item path does, and leaves every
other body to it."""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from monitor.decode.batch import PendingMedia, decode_batch, decode_pending
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeError, DecodeNotes
from monitor.decode.records import Event, MediaStatsEvent, TransportEvent
from tests.conftest import EVENTS
from tests.fuzz_strategies import event_batches


def _plain(value: Any) -> Any:
    """A record as comparable values: a transport body by what it reads from its JSON."""
    if isinstance(value, Event):  # the fast path's events are its envelopes, a subclass
        return ("Event", *(_plain(getattr(value, name)) for name in Event.__struct_fields__))
    if isinstance(value, TransportEvent):
        names = ("transport", "connection_id", "name", "admin_api")
        return ("transport", *(getattr(value, name) for name in names))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            *(_plain(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    return value


def _per_item(data: bytes) -> tuple[list[Event], dict[str, int]] | None:
    """What the per-item path makes of a body; None when it refuses the body or any item."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    notes = DecodeNotes()
    try:
        return [decode_event(item, notes) for item in items], notes.unknown
    except DecodeError:
        return None


def _fast(data: bytes) -> tuple[list[Event], dict[str, int]] | None:
    """What the fast path makes of a body once its pending bodies are decoded (at commit)."""
    decoded = decode_batch(data)
    if decoded is None:
        return None
    events, notes, pending = decoded
    assert sum(type(e.body) is PendingMedia for e in events) == pending
    assert decode_pending(events, notes) == []
    return events, notes.unknown


def _fixture_bodies() -> list[tuple[str, bytes]]:
    bodies = [(str(p.relative_to(EVENTS)), p.read_bytes()) for p in EVENTS.glob("*/[0-9]*.json")]
    for path in EVENTS.glob("*/[0-9]*.json.gz"):  # as Janus sent them, compact
        bodies.append((str(path.relative_to(EVENTS)), gzip.decompress(path.read_bytes())))
    return sorted(bodies)


FIXTURE_BODIES = _fixture_bodies()


def test_fixture_bodies_take_the_fast_path_with_the_same_records() -> None:
    """Every real Janus 1.1.2 body the per-item path reads without a note decodes the same
    records on the fast path; almost all of them take it."""
    fast = 0
    for name, data in FIXTURE_BODIES:
        slow = _per_item(data)
        decoded = _fast(data)
        if decoded is None:
            assert slow is None or slow[1], name  # only a refusal or a note sends it back
            continue
        assert slow is not None, name
        events, notes = decoded
        assert [_plain(e) for e in events] == [_plain(e) for e in slow[0]], name
        assert notes == slow[1], name
        fast += 1
    assert len(FIXTURE_BODIES) > 100
    assert fast >= 0.95 * len(FIXTURE_BODIES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_batches())
def test_what_the_fast_path_takes_the_per_item_path_reads_the_same(data: bytes) -> None:
    """A body of real, hostile and random items: when the fast path takes it, the per-item
    path accepts every item and makes the same records and notes."""
    decoded = _fast(data)
    if decoded is None:
        return
    slow = _per_item(data)
    assert slow is not None
    events, notes = decoded
    assert [_plain(e) for e in events] == [_plain(e) for e in slow[0]]
    assert notes == slow[1]


GOOD = {"emitter": "janus-lab-1", "type": 1, "timestamp": 1, "session_id": 2,
        "event": {"name": "created"}}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},  # an envelope key the decoder does not know: the per-item path notes it
        {"body": None},  # nor this one, though the Event the envelope becomes has a body
        {"event_body": {}},
        {"type": 3},  # an unknown type code: noted
        {"subtype": None},
        {"timestamp": 1.5},
        {"session_id": "2"},
        {"opaque_id": 7},  # noted and dropped
        {"emitter": ""},
        {"emitter": "a\nb"},
        {"emitter": "x" * 129},
        {"type": True},
        {"event": {"transport": {}}},  # a session event with no name: refused
        {"event": None},
        {"session_id": 2**64},
        {"handle_id": 2**63},  # within uint64, but past what msgspec bounds: read item by item
    ],
)
def test_a_body_the_fast_path_cannot_take_whole_goes_item_by_item(change: dict[str, Any]) -> None:
    """One odd item beside a good one sends the whole body back to the per-item path."""
    odd = {**GOOD, **change}
    assert decode_batch(orjson.dumps(GOOD)) is not None
    assert decode_batch(json.dumps([GOOD, odd]).encode()) is None  # 2**64: past orjson


@pytest.mark.parametrize(
    "data",
    [b"", b"[", b"[{}] x", b"nul", b"[" * 5000 + b"]" * 5000, b'"text"', b"[1]", b"\xff"],
)
def test_a_body_that_is_not_a_batch_of_events_goes_item_by_item(data: bytes) -> None:
    """Malformed, too deep, or not events: the per-item path says what is wrong."""
    assert decode_batch(data) is None


def test_one_event_and_a_batch_decode_alike() -> None:
    """An object is one event; a long opaque_id is cut as the per-item path cuts it."""
    one = {**GOOD, "opaque_id": "o" * 300}
    decoded = decode_batch(orjson.dumps(one))
    assert decoded is not None
    [event] = decoded[0]
    assert event.opaque_id == "o" * 256
    assert event.session_id == 2 and event.subtype == 0 and event.handle_id is None
    batch = decode_batch(orjson.dumps([one, one]))
    assert batch is not None and [_plain(e) for e in batch[0]] == [_plain(event)] * 2


STATS_ENTRY = {"mid": "0", "mindex": 0, "media": "video", "codec": "vp8", "base": 90000,
               "packets-received": 10, "bytes-received": 12000, "rtt": 3}  # fmt: skip
STATS = {**GOOD, "type": 32, "subtype": 3, "handle_id": 3, "event": STATS_ENTRY}


@pytest.mark.parametrize(
    ("subtype", "body", "pending"),
    [
        (3, STATS_ENTRY, True),
        (3, [STATS_ENTRY, STATS_ENTRY], True),  # combine_media_stats
        (0, [STATS_ENTRY], True),
        (3, {**STATS_ENTRY, "new-counter": 1, "lost": 2.5, "mid": 7}, True),  # noted, cut
        (3, ["not an entry", {"mid": []}], True),  # entries are noted, never refused
        (1, {"media": "video", "mid": "0", "receiving": True}, False),
        (0, STATS_ENTRY, False),
    ],
)
def test_a_stats_report_is_decoded_after_the_answer_as_the_per_item_path_decodes_it(
    subtype: int, body: Any, pending: bool
) -> None:
    """A stats body is left pending (its acceptance is known) and decode_pending makes the
    per-item path's records and notes of it, odd entries included."""
    data = orjson.dumps([GOOD, {**STATS, "subtype": subtype, "event": body}])
    decoded = decode_batch(data)
    assert decoded is not None
    assert decoded[2] == int(pending)
    assert isinstance(decoded[0][1].body, PendingMedia) is pending
    fast, slow = _fast(data), _per_item(data)
    assert fast is not None and slow is not None
    assert [_plain(e) for e in fast[0]] == [_plain(e) for e in slow[0]]
    assert fast[1] == slow[1]
    if subtype == 3:
        assert isinstance(fast[0][1].body, MediaStatsEvent)


def test_a_stats_body_of_the_wrong_json_type_goes_item_by_item() -> None:
    """A stats event whose body is neither an object nor a list is refused item by item."""
    assert decode_batch(orjson.dumps([GOOD, {**STATS, "event": "stats"}])) is None
