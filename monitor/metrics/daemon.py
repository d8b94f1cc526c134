"""The daemon itself: build, config reloads, what the receivers took and refused, state held."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor import __version__
from monitor.metrics.family import (
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
)
from monitor.state import State
from monitor.telemetry import Telemetry

BUILD = GaugeFamily("janus_monitor_build_info", "Version of this daemon.", ("version",))
RELOAD_OK = GaugeFamily(
    "janus_monitor_config_last_reload_successful",
    "1 if the last configuration (re)load succeeded.",
)
RELOAD_TIME = GaugeFamily(
    "janus_monitor_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully.",
)
RECEIVED = CounterFamily(
    "janus_monitor_events_received",
    "Events accepted from Janus event handlers.",
    ("server", "type"),
)
REJECTED = CounterFamily(
    "janus_monitor_events_rejected",
    "Events or whole webhook bodies refused, by reason.",
    ("reason",),
)
UNKNOWN = CounterFamily(
    "janus_monitor_events_unknown",
    "Accepted events carrying something this daemon does not model "
    "(type, subtype, field, plugin_event).",
    ("what",),
)
WEBHOOK_REQUESTS = CounterFamily(
    "janus_monitor_webhook_requests",
    "Webhook POSTs and WebSocket frames answered, by transport and status code.",
    ("transport", "code"),
)
LAG = HistogramFamily(
    "janus_monitor_event_lag_seconds",
    "Receipt time minus the event's own timestamp: how far behind Janus's event queue is.",
    ("server",),
)
TRACKED = GaugeFamily("janus_monitor_tracked", "State held in memory.", ("kind",))
DROPPED = CounterFamily(
    "janus_monitor_state_dropped",
    "State dropped: stale (not confirmed within limits.stale_after) "
    "or limit (over limits.max_tracked_sessions, _handles, _rooms or _publishers).",
    ("kind", "reason"),
)
COLLECTOR_FAILURES = CounterFamily(
    "janus_monitor_collector_failures",
    "Scrapes in which a collector failed and its families were left out (absent until one).",
    ("collector",),
)


class DaemonCollector(Collector):
    name = "daemon"
    families = (BUILD, RELOAD_OK, RELOAD_TIME, RECEIVED, REJECTED, UNKNOWN, WEBHOOK_REQUESTS,
                LAG, TRACKED, DROPPED, COLLECTOR_FAILURES)  # fmt: skip

    def __init__(self, telemetry: Telemetry, state: State) -> None:
        super().__init__(telemetry)
        self.state = state

    def builders(self) -> Iterable[Builder]:
        return (self._identity, self._events, self._state, self._failures)

    def _identity(self) -> Iterator[Metric]:
        build = BUILD.new()
        build.add_metric([__version__], 1)
        yield build
        yield RELOAD_OK.single(1 if self.telemetry.config_reload_ok else 0)
        yield RELOAD_TIME.single(self.telemetry.config_reload_time)

    def _events(self) -> Iterator[Metric]:
        telemetry = self.telemetry
        received = RECEIVED.new()
        for (server, type_label), count in sorted(telemetry.events_received.items()):
            received.add_metric([server, type_label], count)
        rejected = REJECTED.new()
        for reason, count in sorted(telemetry.events_rejected.items()):
            rejected.add_metric([reason], count)
        unknown = UNKNOWN.new()
        for what, count in sorted(telemetry.events_unknown.items()):
            unknown.add_metric([what], count)
        requests = WEBHOOK_REQUESTS.new()
        for (transport, code), count in sorted(telemetry.webhook_requests.items()):
            requests.add_metric([transport, str(code)], count)
        lag = LAG.new()
        for server, histogram in sorted(telemetry.event_lag.items()):
            lag.add_metric([server], histogram.buckets(), histogram.total)
        yield from (received, rejected, unknown, requests, lag)

    def _state(self) -> Iterator[Metric]:
        tracked = TRACKED.new()
        for kind, count in self.state.tracked().items():
            tracked.add_metric([kind], count)
        dropped = DROPPED.new()
        for (kind, reason), count in sorted(self.telemetry.state_dropped.items()):
            dropped.add_metric([kind, reason], count)
        yield from (tracked, dropped)

    def _failures(self) -> Iterator[Metric]:
        if self.telemetry.collector_failures:
            failures = COLLECTOR_FAILURES.new()
            for collector, count in sorted(self.telemetry.collector_failures.items()):
                failures.add_metric([collector], count)
            yield failures
