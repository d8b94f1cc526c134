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
"""

from __future__ import annotations

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


class Pause:
    """What a builder yields between items: a point where the scrape may yield to the loop."""

    __slots__ = ()


PAUSE: Final = Pause()
PACE = 32  # items a builder walks between PAUSEs (the pacer decides whether to yield)


# Label values then the value, flat: a tuple of str and numbers only is untracked by the
# cyclic GC at its first collection, so a scrape's rows are not promoted and do not bring on
# full collections (a list of labels inside would be).
Row = tuple[Any, ...]


class RowGauge(GaugeMetricFamily):
    """A gauge family whose samples are rows until someone asks for Samples."""

    rows: list[Row]

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.rows = []
        super().__init__(name, documentation, labels=labels)

    def add_metric(self, labels: Sequence[str], value: float, timestamp: Any = None) -> None:
        self.rows.append((*labels, value))

    @property
    def samples(self) -> list[Sample]:
        names, sample_name = self._labelnames, self.name + self.sample_suffix
        return [Sample(sample_name, dict(zip(names, row[:-1], strict=True)), row[-1], None, None)
                for row in self.rows]  # fmt: skip

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:  # Metric.__init__ sets [], a one-value family gives one Sample
            self.rows.extend((*s.labels.values(), s.value) for s in value)

    sample_suffix = ""


class RowCounter(CounterMetricFamily):
    """A counter family whose samples are rows (written as ``name_total``)."""

    rows: list[Row]
    sample_suffix = "_total"
    samples = RowGauge.samples

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.rows = []
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
