"""Which targets this daemon covers: every configured one, or, with ``amqp`` set, only those
whose events it owns. State, polling and remediation all follow the same scope, so the
daemons of a fleet scraped by one Prometheus never double-count and never both act."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from monitor.config import Config, LiveConfig, TargetConfig
from monitor.fleet.ownership import Ownership
from monitor.polling.schedule import Polling
from monitor.state import Limits, State
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.fleet")


class Scope:
    def __init__(
        self,
        live: LiveConfig,
        state: State,
        telemetry: Telemetry,
        limits: Callable[[Config], Limits],
        ownership: Ownership | None = None,
    ) -> None:
        self.live = live
        self.state = state
        self.telemetry = telemetry
        self.limits = limits
        self.ownership = ownership
        self.polling: Polling | None = None  # set once the Janus clients are up
        self._covered: frozenset[str] = frozenset(t.name for t in self.targets(live.current))
        self._owned: frozenset[str] = frozenset()

    def targets(self, config: Config) -> tuple[TargetConfig, ...]:
        if self.ownership is None:
            return config.targets
        owned = self.ownership.owned_emitters()
        return tuple(t for t in config.targets if t.name in owned)

    def names(self, config: Config) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets(config))

    def apply(self, config: Config | None = None) -> None:
        """Bring state and pollers in line with the scope (after a reload or an ownership
        change). An emitter another daemon owns now is dropped at once, with its state."""
        config = config or self.live.current
        targets = self.targets(config)
        covered = frozenset(t.name for t in targets)
        self.state.configure(tuple(t.name for t in targets), self.limits(config))
        if self.ownership is not None:
            # Only what shards carried goes: an emitter delivered by webhook stays this one's.
            owned = self.ownership.owned_emitters()
            gone = [name for name in self._owned - owned if self.state.forget(name)]
            self._owned = owned
            if gone:
                self.telemetry.keep_only(set(self.state.servers))
        if self.polling is not None:
            self.polling.sync(targets)
        if covered != self._covered:
            log.info("scope_changed", covered=sorted(covered),
                     gained=sorted(covered - self._covered) or None,
                     lost=sorted(self._covered - covered) or None)  # fmt: skip
            self._covered = covered

    def remediable(self, config: Config) -> Config:
        """The config remediation sees: owned targets only, and of those the ones whose state
        a poll has rebuilt since this daemon took them over (freshness)."""
        if self.ownership is None:
            return config
        polling = self.polling
        targets = tuple(
            t
            for t in self.targets(config)
            if not t.admin_url or (polling is not None and polling.polled_once(t.name))
        )
        return dataclasses.replace(config, targets=targets)
