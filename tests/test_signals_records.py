"""Samples: bounded flat records, oldest first."""

from __future__ import annotations

import pytest

from monitor.signals.records import Samples


def test_records_keep_the_newest_within_the_limit() -> None:
    """Past the limit the oldest record goes; iteration and indexing give tuples, oldest first."""
    samples = Samples(2, limit=3)
    for n in range(5):
        samples.append(float(n), n * 10.0)
    assert len(samples) == 3
    assert list(samples) == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert samples[0] == (2.0, 20.0) and samples[-1] == (4.0, 40.0)
    samples.popleft()
    assert samples[0] == (3.0, 30.0) and len(samples) == 2


def test_an_index_out_of_range_raises() -> None:
    """Indexing past either end is an IndexError, as for a deque."""
    samples = Samples(3, limit=4)
    samples.append(1.0, 2.0, 3.0)
    with pytest.raises(IndexError):
        samples[1]
    with pytest.raises(IndexError):
        samples[-2]


def test_a_full_history_is_small() -> None:
    """120 (time, value) records take under 2.5 KB, against about 12 KB as a deque of tuples."""
    samples = Samples(2, limit=120)
    for n in range(500):
        samples.append(float(n), float(n))
    assert samples.data.buffer_info()[1] * samples.data.itemsize <= 2500


def test_span_is_the_newest_minus_the_oldest_of_a_column() -> None:
    """span(column) subtracts the oldest record's value from the newest's; empty gives 0."""
    samples = Samples(3, limit=4)
    assert samples.span(1) == 0.0
    for n in range(6):  # the first two fall out of the limit
        samples.append(float(n), n * 10.0, n * n * 1.0)
    assert samples.span(0) == 5.0 - 2.0
    assert samples.span(1) == 50.0 - 20.0
    assert samples.span(2) == 25.0 - 4.0


def test_drop_before_drops_only_the_records_older_than_the_limit() -> None:
    """drop_before(t) drops the leading records whose first value is under t, and keeps one
    exactly at t; dropping everything leaves an empty, usable Samples."""
    samples = Samples(3, limit=10)
    for n in range(5):
        samples.append(float(n), n * 10.0, 0.0)
    samples.drop_before(2.0)
    assert list(samples) == [(2.0, 20.0, 0.0), (3.0, 30.0, 0.0), (4.0, 40.0, 0.0)]
    samples.drop_before(9.0)
    assert len(samples) == 0
    samples.append(9.0, 1.0, 2.0)
    assert list(samples) == [(9.0, 1.0, 2.0)]
