"""What the operator endpoints get from the app, each under its own key (set by the wiring)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.config import LiveConfig
from monitor.readiness import Readiness
from monitor.remediation.audit import AuditLog
from monitor.signals import Signals
from monitor.state import State

STATE = web.AppKey("web_state", State)
CONFIG = web.AppKey("web_config", LiveConfig)
REGISTRY = web.AppKey("web_registry", CollectorRegistry)
METRICS: web.AppKey[Callable[[], Awaitable[list[bytes]]]] = web.AppKey("web_metrics")
"""/metrics text in pieces, rendered paced on the loop (monitor.metrics.exposition)."""
READINESS = web.AppKey("web_readiness", Readiness)
SIGNALS = web.AppKey("web_signals", Signals)
AUDIT = web.AppKey("web_audit", AuditLog)
RELOAD: web.AppKey[Callable[[], tuple[str | None, list[str]]]] = web.AppKey("web_reload")
"""Reload the config file: (None, or the error that kept the running config; the keys that
changed but need a restart)."""
