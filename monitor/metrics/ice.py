"""WebRTC / ICE (SPEC): candidates, ICE states, hangups, selected pairs, failures by stage
and cause, and setup time, per server, from the ICE signal's counters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import Builder, Collector, CounterFamily, HistogramFamily
from monitor.signals.ice import IceSignal
from monitor.telemetry import Telemetry

CANDIDATES = CounterFamily(
    "janus_ice_candidates",
    "ICE candidates seen (events and SDPs), once per PeerConnection each.",
    ("server", "side", "type", "scope"),
)
STATES = CounterFamily(
    "janus_ice_state_changes", "ICE state transitions Janus reported.", ("server", "state")
)
FAILURES = CounterFamily(
    "janus_ice_failures",
    "PeerConnections that never came up, by stage (ice, dtls, stalled) and first cause.",
    ("server", "stage", "cause"),
)
HANGUPS = CounterFamily(
    "janus_webrtc_hangups", "PeerConnection hangups by Janus's reason.", ("server", "reason")
)
PAIRS = CounterFamily(
    "janus_selected_pairs",
    "Selected candidate pairs by candidate types (relay use shows here).",
    ("server", "local_type", "remote_type"),
)
SETUP = HistogramFamily(
    "janus_webrtc_setup_seconds",
    "From negotiation (both SDPs) to webrtcup, by the handle's VideoRoom role.",
    ("server", "role"),
)


class IceCollector(Collector):
    name = "ice"
    families = (CANDIDATES, STATES, FAILURES, HANGUPS, PAIRS, SETUP)

    def __init__(self, telemetry: Telemetry, signal: IceSignal) -> None:
        super().__init__(telemetry)
        self.signal = signal

    def builders(self) -> Iterable[Builder]:
        return (self._counters,)

    def _counters(self) -> Iterator[Metric]:
        candidates, states, failures = CANDIDATES.new(), STATES.new(), FAILURES.new()
        hangups, pairs, setup = HANGUPS.new(), PAIRS.new(), SETUP.new()
        for name, counters in sorted(self.signal.counters.items()):
            for (side, kind, scope), count in sorted(counters.candidates.items()):
                candidates.add_metric([name, side, kind, scope], count)
            for state, count in sorted(counters.states.items()):
                states.add_metric([name, state], count)
            for (stage, cause), count in sorted(counters.failures.items()):
                failures.add_metric([name, stage, cause], count)
            for reason, count in sorted(counters.hangups.items()):
                hangups.add_metric([name, reason], count)
            for (local, remote), count in sorted(counters.pairs.items()):
                pairs.add_metric([name, local, remote], count)
            for role, histogram in sorted(counters.setup.items()):
                setup.add_metric([name, role], histogram.buckets(), histogram.total)
        yield from (candidates, states, failures, hangups, pairs, setup)
