"""What the web handlers share: the current config, state, counters. Reached via an AppKey."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.config import Config, ConfigError, load_config
from monitor.ingest.pipeline import Pipeline
from monitor.logs import configure_logging
from monitor.metrics import Stats
from monitor.state import Limits, State

log = structlog.get_logger("monitor")


def state_limits(config: Config) -> Limits:
    limits = config.limits
    return Limits(
        limits.stale_after,
        limits.max_tracked_handles,
        limits.max_unknown_emitters,
        limits.max_tracked_rooms,
        limits.max_tracked_publishers,
    )


@dataclass(slots=True)
class Runtime:
    config: Config
    config_path: Path | None
    state: State
    stats: Stats
    pipeline: Pipeline
    registry: CollectorRegistry
    ready_gates: set[str] = field(default_factory=set)
    reload_hooks: list[Callable[[Config], None]] = field(default_factory=list)

    def reload(self) -> str | None:
        """Re-read the config file; on error keep the running config and return the message."""
        if self.config_path is None:
            return "no config file to reload"
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self.stats.config_reload_ok = False
            log.error("config_reload_failed", path=str(self.config_path), error=str(exc))
            return str(exc)
        except Exception as exc:  # a loader bug must not take the daemon down with a SIGHUP
            self.stats.config_reload_ok = False
            log.exception("config_reload_failed", path=str(self.config_path))
            return f"cannot load {self.config_path}: internal error ({exc.__class__.__name__})"
        old = self.config
        ignored = [
            key
            for key, before, after in (
                ("listen", old.listen, new.listen),
                ("webhook.path", old.webhook.path, new.webhook.path),
            )
            if before != after
        ]
        try:
            self.apply(new)
        except Exception as exc:
            self.stats.config_reload_ok = False
            log.exception("config_reload_failed", path=str(self.config_path))
            return f"config loaded but not fully applied: {exc.__class__.__name__}"
        log.info(
            "config_reloaded",
            path=str(self.config_path),
            summary=new.summary(),
            needs_restart=ignored or None,
        )
        return None

    def apply(self, config: Config) -> None:
        # listen and webhook.path are bound at startup; keep them so the running app matches.
        if self.config.listen != config.listen or self.config.webhook.path != config.webhook.path:
            config = _keep_bound(config, self.config)
        self.config = config
        self.state.configure(tuple(t.name for t in config.targets), state_limits(config))
        configure_logging(config.log.level, config.log.format)
        for hook in self.reload_hooks:
            hook(config)
        self.stats.config_reload_ok = True
        self.stats.config_reload_time = time.time()

    @property
    def ready(self) -> bool:
        return not self.ready_gates


def _keep_bound(new: Config, running: Config) -> Config:
    webhook = dataclasses.replace(new.webhook, path=running.webhook.path)
    return dataclasses.replace(new, listen=running.listen, webhook=webhook)


RUNTIME = web.AppKey("runtime", Runtime)
