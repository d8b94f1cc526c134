"""Signals: what the daemon concludes from state and events (bitrate, ICE failures, handle
reuse, downstream quality). Each module registers its handlers in the dispatch table, keeps
its own per-handle data, and drops it through the state's removal hooks. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.signals.bitrate import BitrateSignal
from monitor.signals.ice import IceSignal
from monitor.signals.quality import QualitySignal
from monitor.signals.reuse import ReuseSignal
from monitor.state import RemovalHooks, Router, Server


@dataclass(slots=True)
class Signals:
    """Every signal, registered once into the dispatch table and the removal hooks."""

    bitrate: BitrateSignal = field(default_factory=BitrateSignal)
    ice: IceSignal = field(default_factory=IceSignal)
    reuse: ReuseSignal = field(default_factory=ReuseSignal)
    quality: QualitySignal = field(default_factory=QualitySignal)

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        self.bitrate.register(router, hooks)
        self.ice.register(router, hooks)
        self.reuse.register(router, hooks)
        self.quality.register(router, hooks)

    def tick(self, servers: Mapping[str, Server], now: float) -> None:
        """What only time reveals (a setup that never completed); run every second."""
        self.ice.tick(servers, now)
