"""What every collector is made of: declared families, and builders isolated from each other.

A collector declares its families once (name, type, help, labels), so ``describe()`` is real
(the registry refuses a name registered twice) and help texts live in one place. ``collect()``
runs its builders one by one; a builder that raises is logged and counted in telemetry, and
only its families are missing from that scrape. No builder does I/O.

Gauges and counters keep their samples as rows (label values, value): prometheus_client's
``add_metric`` builds a dict and a Sample per sample, which at 10 k publishers is most of a
scrape. ``monitor.metrics.exposition`` writes rows straight to text; ``samples`` builds the
Samples only for whoever asks (generate_latest in tests). Builders that walk many items yield
``PAUSE`` now and then, where the paced renderer may give the loop to ingest.

Series of many items (10 k publishers, 7 families each) are finished lines instead: the label
text an item's series share is kept between scrapes in a ``SharedLabels``, and the builder
writes each line whole (the family's line prefix, that text, the value), so the text is made
in one pass with no row kept; ``samples`` reads the lines back for whoever asks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.metrics")


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family's identity; ``new()`` makes an empty family to add samples to."""

    name: str  # without _total for counters: prometheus_client appends it
    help: str
    labels: tuple[str, ...] = ()

    def new(self) -> Metric:
        raise NotImplementedError

    def own_labels(self, shared: SharedLabels) -> tuple[str, ...]:
        """The labels besides ``shared``'s, for text rows' heads; checked to sort before them,
        so that head then shared text is the order generate_latest writes."""
        own = sorted(set(self.labels) - set(shared.names))
        if [*own, *shared.names] != sorted(self.labels):
            raise ValueError(f"{self.name}: labels {self.labels} do not end with {shared.names}")
        return tuple(own)


class Pause:
    """What a builder yields between items: a point where the scrape may yield to the loop."""

    __slots__ = ()


PAUSE: Final = Pause()
PACE = 32  # items a builder walks between PAUSEs (the pacer decides whether to yield)


def go_float(value: float) -> str:
    """A sample value as Go (and generate_latest) writes it: 1.0, 1.5e+06, +Inf, NaN."""
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"  # the common case, without float repr
    d = float(value)
    s = repr(d)
    dot = s.find(".")
    if 0 < dot < 7:  # the next most common: as Python writes it (no inf, nan or big number)
        return s
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if d != d:
        return "NaN"
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def escape_value(value: str) -> str:
    """A label value as the text format escapes it (backslash, newline, double quote)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """``a="1",b="2"``: label pairs in the order given, values escaped."""
    return ",".join([f'{n}="{escape_value(v)}"' for n, v in zip(names, values, strict=True)])


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_ESCAPED = re.compile(r"\\(.)")


def parse_labels(text: str) -> dict[str, str]:
    """label_text read back: for the Samples of text rows, which only tests ask for."""
    return {
        name: _ESCAPED.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
        for name, value in _LABEL.findall(text)
    }


class SharedLabels:
    """The label text an item's series share (a publisher's ``publisher``, ``room`` and
    ``server``), kept from one walk to the next: one lookup per item and scrape once made.
    What is gone is not tracked key by key (that was a second dict write per item per walk):
    a walk that finds the cache at over twice the live items (plus SLACK) starts it afresh,
    so it holds at most that many. ``names`` must sort after every family's own labels
    (``Family.own_labels`` checks), so a line is ``name{head + shared} value``."""

    __slots__ = ("_texts", "names")
    SLACK = 1024

    def __init__(self, names: tuple[str, ...]) -> None:
        if list(names) != sorted(names):
            raise ValueError(f"shared labels must be sorted: {names}")
        self.names = names
        self._texts: dict[tuple[str, ...], str] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def walk(self, live: int) -> None:
        """A walk over ``live`` items begins: a cache grown past twice that is dropped."""
        if len(self._texts) > 2 * live + self.SLACK:
            self._texts = {}

    def text(self, values: tuple[str, ...]) -> str:
        """The text for label values in ``names`` order (the values are the key)."""
        text = self._texts.get(values)
        if text is None:
            text = self._texts[values] = label_text(self.names, values)
        return text


# Label values then the value, flat: a tuple of str and numbers only is untracked by the
# cyclic GC at its first collection, so a scrape's rows are not promoted and do not bring on
# full collections (a list of labels inside would be).
Row = tuple[Any, ...]


class _Lines:
    """Finished text lines of a row family: ``name``, ``sample_suffix`` and ``lines`` come
    from the family it is mixed into."""

    name: str
    sample_suffix: str
    lines: list[str]

    def line_prefix(self, head: str) -> str:
        """What a line starts with: the sample name, ``{`` and ``head``, the family's own
        labels as text, each followed by a comma (``kind="video",``), or empty. A builder
        writes ``f"{prefix}{shared}}} {go_float(value)}\\n"`` with a ``SharedLabels`` text: the
        whole line in one step, no row kept."""
        return f"{self.name}{self.sample_suffix}{{{head}"

    def add_text(self, head: str, shared: str, value: float) -> None:
        """One line from its parts (builders of many lines inline this with a prefix)."""
        self.lines.append(f"{self.line_prefix(head)}{shared}}} {go_float(value)}\n")


class RowGauge(_Lines, GaugeMetricFamily):
    """A gauge family whose samples are rows until someone asks for Samples."""

    rows: list[Row]
    lines: list[str]  # finished text lines, written after the rows

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.rows, self.lines = [], []
        super().__init__(name, documentation, labels=labels)

    def add_metric(self, labels: Sequence[str], value: float, timestamp: Any = None) -> None:
        self.rows.append((*labels, value))

    @property
    def samples(self) -> list[Sample]:
        names, sample_name = self._labelnames, self.name + self.sample_suffix
        samples = [Sample(sample_name, dict(zip(names, row[:-1], strict=True)), row[-1], None,
                          None) for row in self.rows]  # fmt: skip
        start = len(sample_name) + 1
        for line in self.lines:  # read back: only tests ask for Samples
            labels, _, value = line.rstrip("\n").rpartition(" ")
            samples.append(Sample(sample_name, parse_labels(labels[start:-1]), float(value),
                                  None, None))  # fmt: skip
        return samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:  # Metric.__init__ sets [], a one-value family gives one Sample
            self.rows.extend((*s.labels.values(), s.value) for s in value)

    sample_suffix = ""


class RowCounter(_Lines, CounterMetricFamily):
    """A counter family whose samples are rows (written as ``name_total``)."""

    rows: list[Row]
    lines: list[str]
    sample_suffix = "_total"
    samples = RowGauge.samples

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.rows, self.lines = [], []
        super().__init__(name, documentation, labels=labels)

    def add_metric(
        self,
        labels: Sequence[str],
        value: float,
        created: float | None = None,
        timestamp: Any = None,
        exemplar: Any = None,
    ) -> None:
        self.rows.append((*labels, value))


class GaugeFamily(Family):
    __slots__ = ()

    def new(self) -> RowGauge:
        return RowGauge(self.name, self.help, labels=self.labels)

    def single(self, value: float) -> GaugeMetricFamily:
        """The family with one unlabelled sample."""
        return GaugeMetricFamily(self.name, self.help, value=value)


class CounterFamily(Family):
    __slots__ = ()

    def new(self) -> RowCounter:
        return RowCounter(self.name, self.help, labels=self.labels)


class HistogramFamily(Family):
    __slots__ = ()

    def new(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.help, labels=self.labels)


Builder = Callable[[], Iterable[Metric | Pause]]


class Collector:
    """Base of the collectors: ``families`` for describe(), ``builders()`` for collect()."""

    name = "collector"
    families: tuple[Family, ...] = ()

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def builders(self) -> Iterable[Builder]:
        raise NotImplementedError

    def describe(self) -> list[Metric]:
        return [family.new() for family in self.families]

    def collect(self) -> Iterator[Metric]:
        for build in self.builders():
            try:
                built = [item for item in build() if item is not PAUSE]
            except Exception:  # one broken family must not take /metrics down
                self.failed(build)
                continue
            yield from built  # type: ignore[misc]

    def failed(self, build: Builder) -> None:
        """Count and log a builder that raised (from within its except block)."""
        self.telemetry.collector_failed(self.name)
        log.exception("collector_failed", collector=self.name,
                      builder=getattr(build, "__name__", "?"))  # fmt: skip
