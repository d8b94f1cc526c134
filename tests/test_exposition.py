"""The paced /metrics renderer: generate_latest's text byte for byte, yielding to the loop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from monitor.metrics import build_registry
from monitor.metrics.exposition import go_float, render, render_now
from monitor.metrics.family import (
    PAUSE,
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    SharedLabels,
    label_text,
    parse_labels,
)
from monitor.pacing import Pacer
from monitor.telemetry import Telemetry
from tests.test_metrics import scenario

HOSTILE = ['a"b', "back\\slash", "new\nline", "é ünïcode", "50%", "%s", "", "x" * 300]
VALUES = [0, -1, 999_999, 1_000_000, 1_234_567, 10**12, 1.5, -0.5, 1e-9, 1e308, math.nan,
          math.inf, -math.inf, True, False, 0.1 + 0.2]  # fmt: skip


class Hostile(Collector):
    """Row families with hostile label values and values, labels declared out of order."""

    name = "hostile"
    gauge = GaugeFamily("test_hostile", 'help with "quotes", \\ and\nnewline', ("z", "a", "m"))
    counter = CounterFamily("test_hostile_things", "a counter", ("b", "a"))
    bare = GaugeFamily("test_bare", "no labels")
    texted = CounterFamily("test_texted", "text rows", ("server", "kind", "room"))
    families = (gauge, counter, bare, texted)

    def __init__(self, rows: int = 0) -> None:
        super().__init__(Telemetry())
        self.rows = rows
        self.shared = SharedLabels(("room", "server"))

    def builders(self) -> Iterable[Builder]:
        return (self._families,)

    def _families(self) -> Iterable[object]:
        gauge, counter, bare = self.gauge.new(), self.counter.new(), self.bare.new()
        for i, value in enumerate(VALUES):
            text = HOSTILE[i % len(HOSTILE)]
            gauge.add_metric([text, str(i), text[::-1]], value)
            counter.add_metric([str(i), text], abs(value) if value == value else 0)
            yield PAUSE
        for i in range(self.rows):
            gauge.add_metric(["z", str(i), "m"], i)
        bare.add_metric([], 7)
        texted = self.texted.new()
        self.shared.walk(len(VALUES))
        for i, value in enumerate(VALUES):
            text = HOSTILE[i % len(HOSTILE)]
            head = label_text(self.texted.own_labels(self.shared), [text[::-1]]) + ","
            texted.add_text(head, self.shared.text((text, str(i))), abs(value))
        histogram = HistogramMetricFamily("test_seconds", "a histogram", labels=["server"])
        histogram.add_metric(["s"], [("0.5", 1), ("+Inf", 3)], 2.5)
        yield from (gauge, counter, bare, texted, histogram)


def test_the_golden_scenario_renders_as_generate_latest() -> None:
    """The 10-media scenario's collectors give generate_latest's exact bytes, paced or not."""
    members = scenario()
    expected = generate_latest(build_registry(members))
    assert render_now(members) == expected
    assert asyncio.run(render(members)) == expected


def test_hostile_labels_and_values_render_as_generate_latest() -> None:
    """Quotes, backslashes, newlines, % and huge or odd values escape and format identically."""
    members = (Hostile(),)
    expected = generate_latest(build_registry(members))
    assert asyncio.run(render(members)) == expected
    assert b'test_hostile{a="0",m="b\\"a",z="a\\"b"} 0.0\n' in expected  # names sorted


def test_values_format_as_go_does() -> None:
    """go_float matches what Prometheus's Go client writes for ints, floats and specials."""
    assert [go_float(v) for v in (5, -5, 1_234_567, 1.5e6, 0.25, math.inf, math.nan)] == [
        "5.0", "-5.0", "1.234567e+06", "1.5e+06", "0.25", "+Inf", "NaN"
    ]  # fmt: skip


@given(st.one_of(st.floats(), st.integers(min_value=-(10**18), max_value=10**18)))
def test_values_format_as_prometheus_client_does(value: float) -> None:
    """For any float or int, go_float writes what prometheus_client's floatToGoString does."""
    assert go_float(value) == floatToGoString(value)


def test_a_large_scrape_yields_to_the_loop_and_others_run_meanwhile() -> None:
    """Rendering 50 k rows yields to the loop, and a task scheduled meanwhile runs before the
    render finishes."""
    members = (Hostile(rows=50_000),)

    async def scrape_while_acking() -> tuple[int, bool]:
        pacer = Pacer(slice_seconds=0.001)
        acked = asyncio.Event()
        scrape = asyncio.create_task(render(members, pacer))
        asyncio.get_running_loop().call_soon(acked.set)
        await asyncio.sleep(0)
        ran_before = acked.is_set() and not scrape.done()
        await scrape
        return pacer.yields, ran_before

    yields, ran_before = asyncio.run(scrape_while_acking())
    assert yields > 0
    assert ran_before


def test_a_failing_builder_loses_only_its_families() -> None:
    """A builder that raises is counted and skipped; the next builder's families still render."""

    class Broken(Hostile):
        def builders(self) -> Iterable[Builder]:
            return (self._broken, self._families)

        def _broken(self) -> Iterable[object]:
            yield PAUSE
            raise RuntimeError("boom")

    broken = Broken()
    text = asyncio.run(render((broken,)))
    assert b"# TYPE test_hostile gauge" in text
    assert broken.telemetry.collector_failures == {"hostile": 1}


def test_text_rows_read_back_as_the_labels_they_were_written_from() -> None:
    """label_text then parse_labels gives back every hostile value (the Samples of text rows
    that generate_latest is compared on come from this)."""
    names = [f"l{i}" for i in range(len(HOSTILE))]
    assert parse_labels(label_text(names, HOSTILE)) == dict(zip(names, HOSTILE, strict=True))


def test_shared_labels_are_kept_and_started_afresh_past_twice_the_live_items() -> None:
    """A key's text is made once and kept (the same object) across walks; a walk that finds
    the cache over twice its live items plus SLACK drops it, so gone keys do not pile up."""
    shared = SharedLabels(("room", "server"))
    shared.walk(1)
    first = shared.text(("1", "s"))
    assert first == 'room="1",server="s"'
    shared.walk(1)
    assert shared.text(("1", "s")) is first
    for room in range(2, 4 + SharedLabels.SLACK):  # rooms that come and go
        shared.text((str(room), "s"))
    assert len(shared) == 3 + SharedLabels.SLACK  # 2 x 1 + SLACK + 1
    shared.walk(1)  # one over 2 x 1 + SLACK
    assert len(shared) == 0
    again = shared.text(("1", "s"))
    assert again == first and again is not first


def test_a_family_whose_own_labels_sort_after_the_shared_ones_is_refused() -> None:
    """Text rows write head then shared labels, so a family labelled ``zone`` beside shared
    ``room, server`` would be out of generate_latest's order: own_labels raises."""
    shared = SharedLabels(("room", "server"))
    assert GaugeFamily("ok", "", ("server", "kind", "room")).own_labels(shared) == ("kind",)
    with pytest.raises(ValueError, match="do not end with"):
        GaugeFamily("bad", "", ("server", "zone", "room")).own_labels(shared)
    with pytest.raises(ValueError, match="sorted"):
        SharedLabels(("server", "room"))
