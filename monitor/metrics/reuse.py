"""Handle reuse (SPEC): reuse events by pattern, and live handles flagged as reused."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    PACE,
    PAUSE,
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    Pause,
)
from monitor.metrics.servers import plugin_label
from monitor.signals.reuse import ReuseSignal
from monitor.state import State
from monitor.telemetry import Telemetry

REUSE = CounterFamily(
    "janus_handle_reuse",
    "One plugin handle used for a second purpose (role_change, second_feed, rejoin, "
    "second_room), once per handle and pattern.",
    ("server", "plugin", "pattern"),
)
REUSED = GaugeFamily(
    "janus_handles_reused", "Live handles flagged as reused.", ("server", "plugin")
)


class ReuseCollector(Collector):
    name = "reuse"
    families = (REUSE, REUSED)

    def __init__(self, telemetry: Telemetry, state: State, signal: ReuseSignal) -> None:
        super().__init__(telemetry)
        self.state = state
        self.signal = signal

    def builders(self) -> Iterable[Builder]:
        return (self._reuse,)

    def _reuse(self) -> Iterator[Metric | Pause]:
        reuse, reused = REUSE.new(), REUSED.new()
        totals: dict[tuple[str, str, str], int] = {}
        for (name, plugin, pattern), count in self.signal.counts.items():
            server = self.state.servers.get(name)
            label = plugin_label(plugin, server) if server is not None else "other"
            totals[(name, label, pattern)] = totals.get((name, label, pattern), 0) + count
        for (name, plugin, pattern), count in sorted(totals.items()):
            reuse.add_metric([name, plugin, pattern], count)
        live: dict[tuple[str, str], int] = {}
        for n, ref in enumerate(list(self.signal.flagged), 1):  # a snapshot: the walk pauses
            if not n % PACE:
                yield PAUSE
            name, session_id, handle_id = ref
            server = self.state.servers.get(name)
            handle = server.handle((session_id, handle_id)) if server is not None else None
            if server is not None and handle is not None:
                key = (name, plugin_label(handle.plugin, server))
                live[key] = live.get(key, 0) + 1
        for (name, plugin), count in sorted(live.items()):
            reused.add_metric([name, plugin], count)
        yield from (reuse, reused)
