"""monitor.metrics: one collector per concern, each described, each isolated from the others."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from structlog.testing import capture_logs

from monitor.metrics import build_registry, collectors
from monitor.metrics.family import Builder, Collector, GaugeFamily
from monitor.metrics.videoroom import VideoRoomCollector
from monitor.state import State
from monitor.telemetry import Telemetry
from tests.conftest import metric_samples, sample, series
from tests.test_state import SERVER, replay


def members(state: State, telemetry: Telemetry) -> tuple[Collector, ...]:
    return collectors(state, telemetry, lambda: True)


def test_describe_names_every_family_collect_yields() -> None:
    """Each collector's describe() lists exactly the families its collect() can yield."""
    telemetry = Telemetry()
    telemetry.collector_failed("x")  # so the conditional family is there too
    state = replay("10-media", upto="00052", state=State(targets=(SERVER,), telemetry=telemetry))
    for collector in members(state, telemetry):
        described = {family.name for family in collector.describe()}
        collected = {family.name for family in collector.collect()}
        assert collected <= described, (collector.name, collected - described)
        assert described, collector.name


def test_a_duplicate_family_name_is_refused_at_registration() -> None:
    """With a real describe(), registering a second family of the same name fails."""

    class Twin(Collector):
        name = "twin"
        families = (GaugeFamily("janus_sessions", "Again."),)

        def builders(self) -> Iterable[Builder]:
            return ()

    telemetry = Telemetry()
    with pytest.raises(ValueError, match="janus_sessions"):
        build_registry((*members(State(), telemetry), Twin(telemetry)))


def test_a_failing_collector_is_logged_counted_and_alone_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A builder that raises leaves out its families only; the failure is logged and counted
    in janus_monitor_collector_failures_total (seen from the next scrape: the daemon's
    families render first), and the rest of /metrics renders."""
    telemetry = Telemetry()
    state = replay("10-media", upto="00033", state=State(targets=(SERVER,), telemetry=telemetry))
    registry = build_registry(members(state, telemetry))

    def broken(self: VideoRoomCollector) -> Iterable[object]:
        raise KeyError("4321")

    monkeypatch.setattr(VideoRoomCollector, "_rooms", broken)
    with capture_logs() as logs:
        first = metric_samples(generate_latest(registry).decode())
        second = metric_samples(generate_latest(registry).decode())
    assert [e["collector"] for e in logs if e["event"] == "collector_failed"] == ["videoroom"] * 2
    assert sample(first, "janus_sessions", server=SERVER) == 2  # other collectors render
    assert series(first, "janus_videoroom_rooms") == []  # the failed builder's families
    assert series(first, "janus_videoroom_publisher_info")  # its other builder still renders
    failures = "janus_monitor_collector_failures_total"
    assert sample(second, failures, collector="videoroom") == 1


def test_no_failure_family_until_a_collector_fails() -> None:
    """The failure counter is absent while nothing failed (the golden file shows none)."""
    telemetry = Telemetry()
    text = generate_latest(build_registry(members(State(), telemetry))).decode()
    assert "janus_monitor_collector_failures" not in text


def test_registry_is_a_plain_collector_registry() -> None:
    """build_registry gives a prometheus_client registry, without the process collectors."""
    registry = build_registry(members(State(), Telemetry()))
    assert isinstance(registry, CollectorRegistry)
    assert "process_cpu_seconds_total" not in generate_latest(registry).decode()
