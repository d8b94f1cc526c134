"""Scale-out (SPEC, with ``amqp`` set): the broker connection, what this daemon owns, and
what it consumed. Summed over a fleet, ``janus_monitor_emitter_owned`` is 1 per Janus."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric

from monitor.fleet.ownership import Ownership
from monitor.metrics.family import Builder, Collector, CounterFamily, GaugeFamily
from monitor.telemetry import Telemetry

CONNECTED = GaugeFamily("janus_monitor_amqp_connected", "1 while the broker connection is up.")
SHARD_OWNED = GaugeFamily(
    "janus_monitor_shard_owned",
    "1 for each shard this daemon is the active consumer of, 0 for the others.",
    ("shard",),
)
EMITTER_OWNED = GaugeFamily(
    "janus_monitor_emitter_owned",
    "1 for each Janus whose events this daemon owns, 0 for configured targets it does not "
    "(summed over the fleet: exactly 1 per Janus).",
    ("server",),
)
MESSAGES = CounterFamily(
    "janus_monitor_amqp_messages",
    "Broker messages consumed, by outcome (applied, rejected: could not be decoded, acked).",
    ("outcome",),
)
PROBES = CounterFamily(
    "janus_monitor_amqp_probes", "Ownership probes received (from every daemon of the fleet)."
)
REQUEUED = CounterFamily(
    "janus_monitor_amqp_requeued",
    "Messages sent back to their queue because their shard was being handed back.",
)
HAND_BACKS = CounterFamily(
    "janus_monitor_amqp_shard_hand_backs",
    "Shards this daemon handed back to the fleet member they belong to (balance).",
)
TAKEOVERS = CounterFamily(
    "janus_monitor_amqp_shard_takeovers",
    "Times this daemon became the active consumer of a shard.",
)
LOSSES = CounterFamily("janus_monitor_amqp_connection_losses", "Broker connections lost.")
DISCONNECTED = CounterFamily(
    "janus_monitor_amqp_disconnected_seconds",
    "Time without a broker connection since the first one: events Janus published "
    "meanwhile are lost (rabbitmqevh does not buffer).",
)
BACKLOG = GaugeFamily(
    "janus_monitor_amqp_shard_backlog_messages",
    "Messages ready in each shard queue, as the broker last reported them.",
    ("shard",),
)
MEMBERS = GaugeFamily(
    "janus_monitor_fleet_members",
    "Daemons of the fleet this daemon hears from and that are ready, itself included.",
)


class FleetCollector(Collector):
    name = "fleet"
    families = (CONNECTED, SHARD_OWNED, EMITTER_OWNED, MESSAGES, PROBES, REQUEUED, HAND_BACKS,
                TAKEOVERS, LOSSES, DISCONNECTED, BACKLOG, MEMBERS)  # fmt: skip

    def __init__(
        self,
        telemetry: Telemetry,
        ownership: Ownership,
        targets: Callable[[], tuple[str, ...]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(telemetry)
        self.ownership = ownership
        self.targets = targets
        self.monotonic = monotonic

    def builders(self) -> Iterable[Builder]:
        return (self._ownership, self._counters)

    def _ownership(self) -> Iterator[Metric]:
        fleet = self.ownership
        yield CONNECTED.single(1.0 if fleet.connected else 0.0)
        shards = SHARD_OWNED.new()
        for shard in fleet.shards:
            shards.add_metric([str(shard.index)], 1.0 if shard.active else 0.0)
        yield shards
        owned = fleet.owned_emitters()
        emitters = EMITTER_OWNED.new()
        for name in sorted(owned | set(self.targets())):
            emitters.add_metric([name], 1.0 if name in owned else 0.0)
        yield emitters
        backlog = BACKLOG.new()
        for index, depth in sorted(fleet.backlog.items()):
            backlog.add_metric([str(index)], float(depth))
        yield backlog
        yield MEMBERS.single(float(len(fleet.live_members(self.monotonic()))))

    def _counters(self) -> Iterator[Metric]:
        fleet, counts = self.ownership, self.ownership.counters
        messages = MESSAGES.new()
        for outcome, count in sorted(counts.messages.items()):
            messages.add_metric([outcome], count)
        yield messages
        for family, value in (
            (PROBES, counts.probes),
            (REQUEUED, counts.requeued),
            (HAND_BACKS, counts.hand_backs),
            (TAKEOVERS, counts.takeovers),
            (LOSSES, counts.connection_losses),
            (DISCONNECTED, fleet.disconnected_for(self.monotonic())),
        ):
            metric = family.new()
            metric.add_metric([], value)
            yield metric
