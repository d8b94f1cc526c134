"""The Admin API poller: durations, requests, errors, budget, reconcile age (SPEC "daemon")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
)
from monitor.state import State
from monitor.telemetry import Telemetry

DURATION = HistogramFamily(
    "janus_monitor_poll_duration_seconds",
    "One poll of a target: its Admin API requests and the pauses that pace them.",
    ("server",),
)
ERRORS = CounterFamily(
    "janus_monitor_poll_errors", "Failed Admin API requests.", ("server", "request")
)
REQUESTS = CounterFamily(
    "janus_monitor_admin_requests", "Admin API requests sent.", ("server", "request")
)
REQUEST_DURATION = HistogramFamily(
    "janus_monitor_admin_request_duration_seconds",
    "One Admin API request; a stalled Janus request thread shows here first.",
    ("server",),
)
BUDGET = GaugeFamily(
    "janus_monitor_poll_budget_used_ratio",
    "Share of wall time with an Admin request outstanding, last minute.",
    ("server",),
)
RECONCILE_AGE = GaugeFamily(
    "janus_monitor_reconcile_age_seconds",
    "Age of the oldest handle confirmation by the Admin API (list_handles).",
    ("server",),
)
SKIPPED = CounterFamily(
    "janus_monitor_polls_skipped",
    "Polls left out because slow Admin requests had used up the budget.",
    ("server",),
)
SUCCESS = GaugeFamily(
    "janus_monitor_last_poll_success_timestamp_seconds",
    "When the last successful poll of the target ended.",
    ("server",),
)


class PollingCollector(Collector):
    name = "polling"
    families = (DURATION, ERRORS, REQUESTS, REQUEST_DURATION, BUDGET, RECONCILE_AGE, SKIPPED,
                SUCCESS)  # fmt: skip

    def __init__(
        self,
        telemetry: Telemetry,
        state: State,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(telemetry)
        self.state = state
        self.monotonic = monotonic

    def builders(self) -> Iterable[Builder]:
        return (self._polls,)

    def _polls(self) -> Iterator[Metric]:
        now = self.monotonic()
        duration, errors, requests = DURATION.new(), ERRORS.new(), REQUESTS.new()
        request_duration, budget, age = REQUEST_DURATION.new(), BUDGET.new(), RECONCILE_AGE.new()
        skipped, success = SKIPPED.new(), SUCCESS.new()
        for name, polled in sorted(self.telemetry.polls.items()):
            labels = [name]
            duration.add_metric(labels, polled.poll_duration.buckets(), polled.poll_duration.total)
            request_duration.add_metric(
                labels, polled.request_duration.buckets(), polled.request_duration.total
            )
            for request, count in sorted(polled.requests.items()):
                requests.add_metric([name, request], count)
            for request, count in sorted(polled.errors.items()):
                errors.add_metric([name, request], count)
            budget.add_metric(labels, polled.budget_used(now))
            skipped.add_metric(labels, polled.skipped)
            if polled.last_success is not None:
                success.add_metric(labels, polled.last_success)
            server = self.state.servers.get(name)
            if server is not None:
                oldest = (
                    min(
                        (s.listed_at if s.listed_at is not None else s.since)
                        for s in server.sessions.values()
                    )
                    if server.sessions
                    else now
                )
                age.add_metric(labels, max(0.0, now - oldest))
        yield from (duration, errors, requests, request_duration, budget, age, skipped, success)
