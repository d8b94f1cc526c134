"""monitor.ingest.pipeline's counting: events per emitter and type, and their lag."""

from __future__ import annotations

from bisect import bisect_left

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode.records import TYPE_LABELS, UNKNOWN_TYPE_LABEL, Event, UnknownEvent
from monitor.ingest.pipeline import count_events
from monitor.telemetry import Telemetry

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


@given(EVENTS)
def test_counts_and_lags_match_counting_each_event(events: list[Event]) -> None:
    """Types per emitter, every lag bucket and each sum equal what counting the events one by
    one gives, with emitters mixed, events without a timestamp, and lags below zero."""
    batched, single = Telemetry(), Telemetry()
    count_events(batched, events, WALL_US)
    counted_one_by_one(single, events, WALL_US)
    assert batched.events_received == single.events_received
    assert set(batched.event_lag) == set(single.event_lag)
    for emitter, histogram in single.event_lag.items():
        assert batched.event_lag[emitter].counts == histogram.counts
        assert batched.event_lag[emitter].total == pytest.approx(histogram.total, rel=1e-12)
