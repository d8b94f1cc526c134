"""FrozenHeap: survivors of each full collection are frozen; a thawing collection frees
the cycles that were frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from monitor.memory import YOUNG_THRESHOLD, FrozenHeap
from tests.conftest import FakeClock


@pytest.fixture
def heap() -> Iterator[FrozenHeap]:
    clock = FakeClock(0.0)
    heap = FrozenHeap(monotonic=clock, interval=100.0)
    heap.install()
    try:
        yield heap
    finally:
        heap.uninstall()
        gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_full_collection_freezes_what_it_kept(heap: FrozenHeap) -> None:
    """After a full collection the survivors are frozen, and young collections run less often."""
    gc.unfreeze()
    gc.collect()
    assert gc.get_freeze_count() > 0
    assert gc.get_count()[0] < YOUNG_THRESHOLD and gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_a_thawing_collection_frees_a_frozen_cycle(heap: FrozenHeap) -> None:
    """A cycle frozen while alive and dropped later is freed by collect_all, which logs it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.collect()  # a and b survive: frozen
    del a, b
    assert gc.collect() == 0  # frozen: a young or full collection does not see them
    with capture_logs() as logs:
        freed = heap.collect_all()
    assert freed >= 2
    assert [line["event"] for line in logs] == ["gc_full_collection"]
    assert logs[0]["freed"] == freed and logs[0]["thawed"] > 0


def test_the_thawing_collection_waits_for_its_interval(heap: FrozenHeap) -> None:
    """tick() collects everything only once the interval has passed since the last time."""
    clock = heap.monotonic
    with capture_logs() as logs:
        heap.tick()
        assert logs == []
        clock.now = 150.0  # type: ignore[attr-defined]
        heap.tick()
    assert [line["event"] for line in logs] == ["gc_full_collection"]


def test_uninstall_gives_back_the_thresholds() -> None:
    """uninstall restores the collector's thresholds and removes the callback."""
    before = gc.get_threshold()
    heap = FrozenHeap()
    heap.install()
    heap.uninstall()
    gc.unfreeze()
    assert gc.get_threshold() == before
    assert heap._after_collection not in gc.callbacks
