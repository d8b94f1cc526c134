"""Reloading the config (SIGHUP, POST /-/reload): load, keep what needs a restart, apply."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from monitor.config import Config, ConfigError, LiveConfig, load_config
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.reload")

ApplyHook = Callable[[Config], None]


class Reloader:
    """Applies a config to the running parts: each part subscribes an ``ApplyHook``."""

    def __init__(self, live: LiveConfig, path: Path | None, telemetry: Telemetry) -> None:
        self.live = live
        self.path = path
        self.telemetry = telemetry
        self.hooks: list[ApplyHook] = []
        self.needs_restart: list[str] = []  # keys the last reload changed but cannot apply

    def reload(self) -> str | None:
        """Re-read the config file; on error keep the running config and return the message."""
        if self.path is None:
            return "no config file to reload"
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            self.telemetry.config_reload_ok = False
            log.error("config_reload_failed", path=str(self.path), error=str(exc))
            return str(exc)
        except Exception as exc:  # a loader bug must not take the daemon down with a SIGHUP
            self.telemetry.config_reload_ok = False
            log.exception("config_reload_failed", path=str(self.path))
            return f"cannot load {self.path}: internal error ({exc.__class__.__name__})"
        old = self.live.current
        ignored = [
            key
            for key, before, after in (
                ("listen", old.listen, new.listen),
                ("webhook.path", old.webhook.path, new.webhook.path),
                ("amqp", old.amqp, new.amqp),
            )
            if before != after
        ]
        self.needs_restart = ignored
        try:
            self.apply(new)
        except Exception as exc:
            self.telemetry.config_reload_ok = False
            log.exception("config_reload_failed", path=str(self.path))
            return f"config loaded but not fully applied: {exc.__class__.__name__}"
        log.info(
            "config_reloaded",
            path=str(self.path),
            summary=new.summary(),
            needs_restart=ignored or None,
        )
        return None

    def apply(self, config: Config) -> None:
        # listen, webhook.path and the broker connection are bound at startup; keep them so
        # the running app matches.
        running = self.live.current
        if (
            running.listen != config.listen
            or running.webhook.path != config.webhook.path
            or running.amqp != config.amqp
        ):
            config = _keep_bound(config, running)
        self.live.current = config
        for hook in self.hooks:
            hook(config)
        self.telemetry.config_reload_ok = True
        self.telemetry.config_reload_time = time.time()


def _keep_bound(new: Config, running: Config) -> Config:
    webhook = dataclasses.replace(new.webhook, path=running.webhook.path)
    return dataclasses.replace(new, listen=running.listen, webhook=webhook, amqp=running.amqp)
