"""Prometheus exposition: one collector per concern, built at scrape time from state and
telemetry, so what is gone disappears. Only the wiring (``monitor.app``) imports this."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from monitor.fleet.ownership import Ownership
from monitor.metrics.bitrate import BitrateCollector
from monitor.metrics.daemon import DaemonCollector
from monitor.metrics.family import Collector, SharedLabels
from monitor.metrics.fleet import FleetCollector
from monitor.metrics.ice import IceCollector
from monitor.metrics.polling import PollingCollector
from monitor.metrics.quality import QualityCollector
from monitor.metrics.remediation import RemediationCollector
from monitor.metrics.reuse import ReuseCollector
from monitor.metrics.servers import ServersCollector
from monitor.metrics.videoroom import PUBLISHER_LABELS, VideoRoomCollector
from monitor.signals import Signals
from monitor.state import State
from monitor.telemetry import Telemetry

__all__ = ["Collector", "build_registry", "collectors"]


def collectors(
    state: State,
    telemetry: Telemetry,
    expose_display: Callable[[], bool],
    monotonic: Callable[[], float] = time.monotonic,
    *,
    signals: Signals | None = None,
    tolerance: Callable[[], float] = lambda: 1.25,
    fleet: Ownership | None = None,
    targets: Callable[[], tuple[str, ...]] = tuple,
) -> tuple[Collector, ...]:
    """Every collector, in the order /metrics shows their families (signals' last)."""
    # One for both walks of the publishers: a text is a function of its key alone, so a walk
    # cut into by another (concurrent scrapes) only makes some texts again.
    publisher_labels = SharedLabels(PUBLISHER_LABELS)
    base: tuple[Collector, ...] = (
        DaemonCollector(telemetry, state),
        ServersCollector(telemetry, state),
        PollingCollector(telemetry, state, monotonic),
        VideoRoomCollector(telemetry, state, expose_display, publisher_labels),
    )
    if fleet is not None:
        base = (*base, FleetCollector(telemetry, fleet, targets, monotonic))
    if signals is None:
        return base
    return (
        *base,
        BitrateCollector(telemetry, state, signals.bitrate, tolerance, monotonic, publisher_labels),
        IceCollector(telemetry, signals.ice),
        ReuseCollector(telemetry, state, signals.reuse),
        QualityCollector(telemetry, state, signals.quality),
        RemediationCollector(telemetry),
    )


def build_registry(members: tuple[Collector, ...]) -> CollectorRegistry:
    """A registry of the collectors; registering checks their described names are unique."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in members:
        registry.register(collector)
    return registry
