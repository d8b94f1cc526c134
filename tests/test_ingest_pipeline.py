"""monitor.ingest.pipeline: counting events per emitter and type and their lag, and what
commit does with bodies left pending."""

from __future__ import annotations

from bisect import bisect_left
from typing import NoReturn

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode import batch
from monitor.decode.records import TYPE_LABELS, UNKNOWN_TYPE_LABEL, Event, UnknownEvent
from monitor.ingest.pipeline import Pipeline, count_events
from monitor.state import State
from monitor.telemetry import Telemetry
from tests.conftest import capture_daemon_logs, log_lines

WALL_US = 1_700_000_000_000_000


def counted_one_by_one(stats: Telemetry, events: list[Event], wall_us: float) -> None:
    """The plain reading count_events must agree with: each event on its own."""
    for event in events:
        key = (event.emitter, TYPE_LABELS.get(event.type, UNKNOWN_TYPE_LABEL))
        stats.events_received[key] = stats.events_received.get(key, 0) + 1
        if event.timestamp:
            lag = max(0.0, (wall_us - event.timestamp) / 1_000_000)
            histogram = stats.lag(event.emitter)
            histogram.counts[bisect_left(histogram.bounds, lag)] += 1
            histogram.total += lag


def event(emitter: str, kind: int, ago: int | None) -> Event:
    stamp = 0 if ago is None else WALL_US - ago
    return Event(emitter, kind, 0, stamp, None, None, None, UnknownEvent(kind))


EVENTS = st.lists(
    st.builds(
        event,
        st.sampled_from(["janus-a", "janus-b"]),
        st.sampled_from([1, 2, 32, 64, 999]),
        # None: no timestamp; negative: a Janus clock ahead of ours; 10_000 us: a bucket bound
        st.none() | st.integers(-5_000_000, 400_000_000) | st.just(10_000),
    ),
    max_size=60,
)


@given(EVENTS, st.sampled_from([0.0, 0.25, 0.999]))
def test_counts_and_lags_match_counting_each_event(events: list[Event], part_us: float) -> None:
    """Types per emitter, every lag bucket and each sum equal what counting the events one by
    one gives, with emitters mixed, events without a timestamp, lags below zero, and a clock
    read between two microseconds."""
    batched, single = Telemetry(), Telemetry()
    count_events(batched, events, WALL_US + part_us)
    counted_one_by_one(single, events, WALL_US + part_us)
    assert batched.events_received == single.events_received
    assert set(batched.event_lag) == set(single.event_lag)
    for emitter, histogram in single.event_lag.items():
        assert batched.event_lag[emitter].counts == histogram.counts
        assert batched.event_lag[emitter].total == pytest.approx(histogram.total, rel=1e-12)


@given(EVENTS, st.sampled_from([0.0, 0.999]))
def test_the_one_emitter_a_caller_names_counts_as_the_events_say(
    events: list[Event], part_us: float
) -> None:
    """Events of one emitter, counted with that emitter named (no grouping), come out as
    counting them one by one."""
    events = [event("janus-a", e.type, WALL_US - e.timestamp if e.timestamp else None)
              for e in events]  # fmt: skip
    named, single = Telemetry(), Telemetry()
    count_events(named, events, WALL_US + part_us, "janus-a")
    counted_one_by_one(single, events, WALL_US + part_us)
    assert named.events_received == single.events_received
    assert {k: v.counts for k, v in named.event_lag.items()} == {
        k: v.counts for k, v in single.event_lag.items()
    }
    for emitter, histogram in single.event_lag.items():
        assert named.event_lag[emitter].total == pytest.approx(histogram.total, rel=1e-12)


def test_a_pending_body_lost_to_a_decoder_bug_is_counted_and_spares_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stats body answered as accepted whose decoder then fails is logged with its
    traceback and counted as internal_error; the batch's other events are applied."""
    raw = capture_daemon_logs(monkeypatch)
    session = {"emitter": "janus-a", "type": 1, "timestamp": 1, "session_id": 2,
               "event": {"name": "created"}}  # fmt: skip
    stats = {"emitter": "janus-a", "type": 32, "subtype": 3, "timestamp": 2, "session_id": 2,
             "handle_id": 3, "event": {"mid": "0", "media": "video"}}  # fmt: skip

    def broken(body: object, subtype: int, notes: object) -> NoReturn:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(batch, "_decode_stats", broken)
    telemetry = Telemetry()
    pipeline = Pipeline(State(), telemetry)
    result = pipeline.ingest_body(orjson.dumps([session, stats]))
    assert (result.accepted, result.rejected, result.pending) == (2, 0, 1)
    pipeline.commit(result)
    assert telemetry.events_rejected.get("internal_error") == 1
    assert telemetry.events_received == {("janus-a", "session"): 1}
    [line] = [line for line in log_lines(raw) if line["event"] == "event_decode_failed"]
    assert line["type"] == "media" and "decoder bug" in line["exception"]
