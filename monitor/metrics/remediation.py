"""Remediation (SPEC): decisions taken, by action and outcome."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import Builder, Collector, CounterFamily

ACTIONS = CounterFamily(
    "janus_monitor_remediation_actions",
    "Remediation decisions taken, by action (cap_bitrate, kick) and outcome (applied, "
    "dry_run, failed, rate_limited, skipped).",
    ("server", "action", "outcome"),
)


class RemediationCollector(Collector):
    name = "remediation"
    families = (ACTIONS,)

    def builders(self) -> Iterable[Builder]:
        return (self._actions,)

    def _actions(self) -> Iterator[Metric]:
        actions = ACTIONS.new()
        for (server, action, outcome), count in sorted(self.telemetry.remediation.items()):
            actions.add_metric([server, action, outcome], count)
        yield actions
