"""Bounded runs of numeric samples, kept flat: what the signals remember per handle.

A ``deque(maxlen=120)`` of (time, value) tuples is about 12 KB per full publisher (a tuple
and two floats per sample, and deque blocks), 120 MB at 10 k publishers; the same samples
flat in an ``array('d')`` are 1.9 KB. An empty deque alone is 760 bytes of preallocated block.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator


class Samples:
    """At most ``limit`` records of ``width`` floats each, oldest first."""

    __slots__ = ("data", "limit", "width")

    def __init__(self, width: int, limit: int) -> None:
        self.width = width
        self.limit = limit
        self.data = array("d")

    def __len__(self) -> int:
        return len(self.data) // self.width

    def append(self, *values: float) -> None:
        self.data.extend(values)
        if len(self.data) > self.limit * self.width:
            del self.data[: self.width]

    def popleft(self) -> None:
        del self.data[: self.width]

    def drop_before(self, oldest: float) -> None:
        """Drop the records whose first value is below ``oldest`` (the oldest come first)."""
        data, width = self.data, self.width
        cut = 0
        while cut < len(data) and data[cut] < oldest:
            cut += width
        if cut:
            del data[:cut]

    def span(self, column: int) -> float:
        """The newest record's value in ``column`` minus the oldest's (0 when empty); no
        tuples made: the scrape asks this of every subscriber."""
        data, width = self.data, self.width
        return data[column - width] - data[column] if data else 0.0

    def __getitem__(self, index: int) -> tuple[float, ...]:
        data, width = self.data, self.width
        if index == -1 and data:  # the newest: what the signals read on every report
            return tuple(data[-width:])
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError(index)
        start = index * self.width
        return tuple(self.data[start : start + self.width])

    def __iter__(self) -> Iterator[tuple[float, ...]]:
        data, width = self.data, self.width
        for start in range(0, len(data), width):
            yield tuple(data[start : start + width])
