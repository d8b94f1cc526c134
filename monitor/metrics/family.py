"""What every collector is made of: declared families, and builders isolated from each other.

A collector declares its families once (name, type, help, labels), so ``describe()`` is real
(the registry refuses a name registered twice) and help texts live in one place. ``collect()``
runs its builders one by one; a builder that raises is logged and counted in telemetry, and
only its families are missing from that scrape. No builder does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

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


class GaugeFamily(Family):
    __slots__ = ()

    def new(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def single(self, value: float) -> GaugeMetricFamily:
        """The family with one unlabelled sample."""
        return GaugeMetricFamily(self.name, self.help, value=value)


class CounterFamily(Family):
    __slots__ = ()

    def new(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.help, labels=self.labels)


class HistogramFamily(Family):
    __slots__ = ()

    def new(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.help, labels=self.labels)


Builder = Callable[[], Iterable[Metric]]


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
                built = list(build())
            except Exception:  # one broken family must not take /metrics down
                self.telemetry.collector_failed(self.name)
                log.exception("collector_failed", collector=self.name,
                              builder=getattr(build, "__name__", "?"))  # fmt: skip
                continue
            yield from built
