"""Signals: what the daemon concludes from state and events (bitrate, ICE failures, handle
reuse, downstream quality). Each module registers its handlers in the dispatch table, keeps
its own per-handle data, and drops it through the state's removal hooks. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.signals.bitrate import BitrateSignal
from monitor.state import RemovalHooks, Router


@dataclass(slots=True)
class Signals:
    """Every signal, registered once into the dispatch table and the removal hooks."""

    bitrate: BitrateSignal = field(default_factory=BitrateSignal)

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        self.bitrate.register(router, hooks)
