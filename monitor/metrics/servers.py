"""Janus servers: up, identity, sessions and handles (SPEC "Janus servers")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    Builder,
    Collector,
    GaugeFamily,
    Pause,
)
from monitor.state import Server, State
from monitor.telemetry import Telemetry

JANUS_PLUGINS = frozenset(
    f"janus.plugin.{name}"
    for name in (
        "videoroom", "audiobridge", "streaming", "echotest", "textroom", "sip", "nosip",
        "recordplay", "videocall", "voicemail", "duktape", "lua",
    )
)  # fmt: skip
"""The plugins Janus 1.1.2 ships; a server's `info` adds the ones it has loaded."""


def plugin_label(plugin: str | None, server: Server) -> str:
    """A plugin label from a known set, never from an event: Janus's own plugins, the ones
    the server's info lists, ``unknown`` (not told yet), or ``other``."""
    if plugin is None:
        return "unknown"
    if plugin in JANUS_PLUGINS or (server.info is not None and plugin in server.info.plugins):
        return plugin
    return "other"


UP = GaugeFamily("janus_up", "1 if the last Admin API poll succeeded.", ("server",))
INFO = GaugeFamily(
    "janus_info",
    "Build and identity of the server (Admin API info).",
    ("server", "version", "server_name"),
)
PUBLIC_IP = GaugeFamily(
    "janus_public_ip_configured",
    "1 if info reports a public-ip (nat_1_1_mapping or STUN), else 0.",
    ("server",),
)
SESSIONS = GaugeFamily("janus_sessions", "Live sessions.", ("server",))
IDENTITY_MISMATCH = GaugeFamily(
    "janus_monitor_identity_mismatch",
    "1 when a target's Janus reports another server_name than the target's name: its events "
    "arrive under that name (set general.server_name, or rename the target).",
    ("server", "server_name"),
)
HANDLES = GaugeFamily("janus_handles", "Live plugin handles.", ("server", "plugin"))


class ServersCollector(Collector):
    name = "servers"
    families = (UP, INFO, PUBLIC_IP, SESSIONS, HANDLES, IDENTITY_MISMATCH)

    def __init__(self, telemetry: Telemetry, state: State) -> None:
        super().__init__(telemetry)
        self.state = state

    def builders(self) -> Iterable[Builder]:
        return (self._identity, self._sessions, self._mismatches)

    def _identity(self) -> Iterator[Metric]:
        up, info, public_ip = UP.new(), INFO.new(), PUBLIC_IP.new()
        for name, server in sorted(self.state.servers.items()):
            polled = self.telemetry.polls.get(name)
            if polled is not None and polled.up is not None:
                up.add_metric([name], int(polled.up))
            if server.info is not None:
                version = server.info.version_string or ""
                info.add_metric([name, version, server.info.server_name or ""], 1)
                public_ip.add_metric([name], int(bool(server.info.public_ip)))
        yield from (up, info, public_ip)

    def _mismatches(self) -> Iterator[Metric]:
        mismatch = IDENTITY_MISMATCH.new()
        for name, server in sorted(self.state.servers.items()):
            reported = server.info.server_name if server.info is not None else None
            if server.configured and reported and reported != name:
                mismatch.add_metric([name, reported], 1)
        yield mismatch

    def _sessions(self) -> Iterator[Metric | Pause]:
        sessions, handles = SESSIONS.new(), HANDLES.new()
        for name, server in sorted(self.state.servers.items()):
            if not server.configured and not server.sessions:
                continue
            sessions.add_metric([name], len(server.sessions))
            by_plugin: dict[str, int] = {}  # state counts by Janus's plugin name
            for plugin_name, count in server.plugin_handles.items():
                plugin = plugin_label(plugin_name, server)
                by_plugin[plugin] = by_plugin.get(plugin, 0) + count
            for plugin, count in sorted(by_plugin.items()):
                handles.add_metric([name, plugin], count)
        yield from (sessions, handles)
