"""Prometheus metrics: built at scrape time from current state, so what is gone disappears.

``Stats`` holds the daemon's own counters as plain numbers (the webhook hot path only adds to
dicts); ``StateCollector.collect()`` turns state and stats into metric families and does no I/O.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from monitor import __version__
from monitor.state import State

REJECT_REASONS = (
    "malformed_json",  # the body (or frame) is not JSON
    "bad_body",  # JSON, but not an object or an array
    "bad_compression",  # corrupt or truncated gzip/deflate
    "unsupported_encoding",  # a Content-Encoding other than gzip, deflate, identity
    "too_large",  # over webhook.max_body_bytes
    "decompressed_too_large",  # over webhook.max_decompressed_bytes once inflated
    "unauthorized",  # basic auth missing or wrong
    "invalid_event",  # one item of a batch is not a usable event
    "unknown_emitter_limit",  # too many emitters that are not configured targets
    "internal_error",  # applying a valid event failed: a bug, logged with its traceback
)

JANUS_PLUGINS = frozenset(
    f"janus.plugin.{name}"
    for name in (
        "videoroom", "audiobridge", "streaming", "echotest", "textroom", "sip", "nosip",
        "recordplay", "videocall", "voicemail", "duktape", "lua",
    )
)  # fmt: skip
"""The plugins Janus 1.1.2 ships; a server's `info` adds the ones it has loaded."""

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ADMIN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BUDGET_WINDOW = 60.0  # seconds over which poll_budget_used_ratio is computed
DISPLAY_MAX = 64


@dataclass(slots=True)
class Histogram:
    """A bare histogram: one list increment per observation, rendered at scrape time."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class PollStats:
    """One target's Admin API polling, as the poller reports it."""

    up: bool | None = None  # None until the first poll finished
    last_success: float | None = None  # wall clock
    poll_duration: Histogram = field(default_factory=lambda: Histogram(POLL_BUCKETS))
    request_duration: Histogram = field(default_factory=lambda: Histogram(ADMIN_BUCKETS))
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    busy: deque[tuple[float, float]] = field(default_factory=deque)  # (ended, duration)
    skipped: int = 0  # polls left out because the budget was spent

    def record(self, request: str, started: float, duration: float, error: str | None) -> None:
        self.requests[request] = self.requests.get(request, 0) + 1
        if error is not None:
            self.errors[request] = self.errors.get(request, 0) + 1
        self.request_duration.observe(duration)
        self.busy.append((started + duration, duration))

    def budget_used(self, now: float) -> float:
        """Share of the last minute with an Admin request outstanding."""
        horizon = now - BUDGET_WINDOW
        while self.busy and self.busy[0][0] < horizon:
            self.busy.popleft()
        busy = sum(min(duration, ended - horizon) for ended, duration in self.busy)
        return min(1.0, busy / BUDGET_WINDOW)


@dataclass(slots=True)
class Stats:
    """The daemon's own counters, kept as plain dicts and numbers."""

    events_received: dict[tuple[str, str], int] = field(default_factory=dict)
    events_rejected: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0)
    )
    events_unknown: dict[str, int] = field(default_factory=dict)
    event_lag: dict[str, Histogram] = field(default_factory=dict)
    webhook_requests: dict[tuple[str, int], int] = field(default_factory=dict)
    config_reload_ok: bool = False
    config_reload_time: float = 0.0
    polls: dict[str, PollStats] = field(default_factory=dict)

    def keep_only(self, servers: set[str]) -> None:
        """Forget the event counters of servers no longer tracked (an unknown emitter that went
        quiet), so their series vanish and emitter names cannot pile up."""
        for key in [k for k in self.events_received if k[0] not in servers]:
            del self.events_received[key]
        for name in [n for n in self.event_lag if n not in servers]:
            del self.event_lag[name]

    def poll(self, server: str) -> PollStats:
        stats = self.polls.get(server)
        if stats is None:
            stats = self.polls[server] = PollStats()
        return stats

    def reject(self, reason: str, n: int = 1) -> None:
        self.events_rejected[reason] = self.events_rejected.get(reason, 0) + n

    def request(self, transport: str, code: int) -> None:
        key = (transport, code)
        self.webhook_requests[key] = self.webhook_requests.get(key, 0) + 1

    def lag(self, server: str) -> Histogram:
        histogram = self.event_lag.get(server)
        if histogram is None:
            histogram = self.event_lag[server] = Histogram(LAG_BUCKETS)
        return histogram


class StateCollector:
    """A prometheus_client custom collector over State and Stats."""

    def __init__(
        self,
        state: State,
        stats: Stats,
        expose_display: Callable[[], bool],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.stats = stats
        self.expose_display = expose_display
        self.monotonic = monotonic

    def describe(self) -> list[Metric]:
        return []  # families are built per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._daemon()
        yield from self._servers()
        yield from self._polls()
        yield from self._videoroom()

    def _servers(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "janus_up", "1 if the last Admin API poll succeeded.", labels=["server"]
        )
        info = GaugeMetricFamily(
            "janus_info",
            "Build and identity of the server (Admin API info).",
            labels=["server", "version", "server_name"],
        )
        public_ip = GaugeMetricFamily(
            "janus_public_ip_configured",
            "1 if info reports a public-ip (nat_1_1_mapping or STUN), else 0.",
            labels=["server"],
        )
        sessions = GaugeMetricFamily("janus_sessions", "Live sessions.", labels=["server"])
        handles = GaugeMetricFamily(
            "janus_handles", "Live plugin handles.", labels=["server", "plugin"]
        )
        for name, server in sorted(self.state.servers.items()):
            polled = self.stats.polls.get(name)
            if polled is not None and polled.up is not None:
                up.add_metric([name], int(polled.up))
            if server.info is not None:
                version = server.info.version_string or ""
                info.add_metric([name, version, server.info.server_name or ""], 1)
                public_ip.add_metric([name], int(bool(server.info.public_ip)))
            if not server.configured and not server.sessions:
                continue
            sessions.add_metric([name], len(server.sessions))
            loaded = set(server.info.plugins) if server.info is not None else set()
            by_plugin: dict[str, int] = {}
            for handle in server.handles():
                plugin = handle.plugin or "unknown"
                if plugin not in JANUS_PLUGINS and plugin not in loaded and plugin != "unknown":
                    plugin = "other"  # a label comes from a known set, never from an event
                by_plugin[plugin] = by_plugin.get(plugin, 0) + 1
            for plugin, count in sorted(by_plugin.items()):
                handles.add_metric([name, plugin], count)
        yield from (up, info, public_ip, sessions, handles)

    def _polls(self) -> Iterator[Metric]:
        now = self.monotonic()
        duration = HistogramMetricFamily(
            "janus_monitor_poll_duration_seconds",
            "One poll of a target: its Admin API requests and the pauses that pace them.",
            labels=["server"],
        )
        errors = CounterMetricFamily(
            "janus_monitor_poll_errors",
            "Failed Admin API requests.",
            labels=["server", "request"],
        )
        requests = CounterMetricFamily(
            "janus_monitor_admin_requests", "Admin API requests sent.", labels=["server", "request"]
        )
        request_duration = HistogramMetricFamily(
            "janus_monitor_admin_request_duration_seconds",
            "One Admin API request; a stalled Janus request thread shows here first.",
            labels=["server"],
        )
        budget = GaugeMetricFamily(
            "janus_monitor_poll_budget_used_ratio",
            "Share of wall time with an Admin request outstanding, last minute.",
            labels=["server"],
        )
        age = GaugeMetricFamily(
            "janus_monitor_reconcile_age_seconds",
            "Age of the oldest handle confirmation by the Admin API (list_handles).",
            labels=["server"],
        )
        skipped = CounterMetricFamily(
            "janus_monitor_polls_skipped",
            "Polls left out because slow Admin requests had used up the budget.",
            labels=["server"],
        )
        success = GaugeMetricFamily(
            "janus_monitor_last_poll_success_timestamp_seconds",
            "When the last successful poll of the target ended.",
            labels=["server"],
        )
        for name, polled in sorted(self.stats.polls.items()):
            labels = [name]
            duration.add_metric(labels, polled.poll_duration.buckets(), polled.poll_duration.total)
            request_duration.add_metric(
                labels, polled.request_duration.buckets(), polled.request_duration.total
            )
            for request, count in sorted(polled.requests.items()):
                requests.add_metric([name, request], count)
            for request, count in sorted(polled.errors.items()):
                errors.add_metric([name, request], count)
            budget.add_metric(labels, polled.budget_used(now))
            skipped.add_metric(labels, polled.skipped)
            if polled.last_success is not None:
                success.add_metric(labels, polled.last_success)
            server = self.state.servers.get(name)
            if server is not None:
                oldest = (
                    min(
                        (s.listed_at if s.listed_at is not None else s.since)
                        for s in server.sessions.values()
                    )
                    if server.sessions
                    else now
                )
                age.add_metric(labels, max(0.0, now - oldest))
        yield from (duration, errors, requests, request_duration, budget, age, skipped, success)

    def _daemon(self) -> Iterator[Metric]:
        stats = self.stats
        build = GaugeMetricFamily(
            "janus_monitor_build_info", "Version of this daemon.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build
        yield GaugeMetricFamily(
            "janus_monitor_config_last_reload_successful",
            "1 if the last configuration (re)load succeeded.",
            value=1 if stats.config_reload_ok else 0,
        )
        yield GaugeMetricFamily(
            "janus_monitor_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            value=stats.config_reload_time,
        )

        received = CounterMetricFamily(
            "janus_monitor_events_received",
            "Events accepted from Janus event handlers.",
            labels=["server", "type"],
        )
        for (server, type_label), count in sorted(stats.events_received.items()):
            received.add_metric([server, type_label], count)
        yield received

        rejected = CounterMetricFamily(
            "janus_monitor_events_rejected",
            "Events or whole webhook bodies refused, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(stats.events_rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected

        unknown = CounterMetricFamily(
            "janus_monitor_events_unknown",
            "Accepted events carrying something this daemon does not model "
            "(type, subtype, field, plugin_event).",
            labels=["what"],
        )
        for what, count in sorted(stats.events_unknown.items()):
            unknown.add_metric([what], count)
        yield unknown

        requests = CounterMetricFamily(
            "janus_monitor_webhook_requests",
            "Webhook POSTs and WebSocket frames answered, by transport and status code.",
            labels=["transport", "code"],
        )
        for (transport, code), count in sorted(stats.webhook_requests.items()):
            requests.add_metric([transport, str(code)], count)
        yield requests

        lag = HistogramMetricFamily(
            "janus_monitor_event_lag_seconds",
            "Receipt time minus the event's own timestamp: how far behind Janus's event queue is.",
            labels=["server"],
        )
        for server, histogram in sorted(stats.event_lag.items()):
            lag.add_metric([server], histogram.buckets(), histogram.total)
        yield lag

        tracked = GaugeMetricFamily(
            "janus_monitor_tracked", "State held in memory.", labels=["kind"]
        )
        for kind, count in self.state.tracked().items():
            tracked.add_metric([kind], count)
        yield tracked

        dropped = CounterMetricFamily(
            "janus_monitor_state_dropped",
            "State dropped: stale (not confirmed within limits.stale_after) "
            "or limit (over limits.max_tracked_handles, _rooms or _publishers).",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(self.state.dropped.items()):
            dropped.add_metric([kind, reason], count)
        yield dropped

    def _videoroom(self) -> Iterator[Metric]:
        rooms = GaugeMetricFamily(
            "janus_videoroom_rooms", "VideoRoom rooms that exist.", labels=["server"]
        )
        cap = GaugeMetricFamily(
            "janus_videoroom_room_bitrate_cap_bits_per_second",
            "The room's bitrate cap (bits/s); 0 = no cap. Absent until known.",
            labels=["server", "room"],
        )
        max_publishers = GaugeMetricFamily(
            "janus_videoroom_room_max_publishers",
            "The room's publishers limit. Absent until known.",
            labels=["server", "room"],
        )
        publishers = GaugeMetricFamily(
            "janus_videoroom_room_publishers",
            "Publishers (publisher-type participants) in the room now.",
            labels=["server", "room"],
        )
        subscribers = GaugeMetricFamily(
            "janus_videoroom_room_subscribers",
            "Subscriber handles in the room now.",
            labels=["server", "room"],
        )
        recording = GaugeMetricFamily(
            "janus_videoroom_room_recording",
            "1 if the room records. Absent until known.",
            labels=["server", "room"],
        )
        info = GaugeMetricFamily(
            "janus_videoroom_publisher_info",
            "Who the publisher is (display truncated to 64 characters).",
            labels=["server", "room", "publisher", "display"],
        )
        publishing = GaugeMetricFamily(
            "janus_videoroom_publisher_publishing",
            "1 while the publisher's PeerConnection is up and publishing, 0 when joined only.",
            labels=["server", "room", "publisher"],
        )
        show_display = self.expose_display()
        for name, server in sorted(self.state.servers.items()):
            if not server.rooms and not server.configured:
                continue
            rooms.add_metric([name], len(server.rooms))
            per_room_publishers = dict.fromkeys(server.rooms, 0)
            per_room_subscribers = dict.fromkeys(server.rooms, 0)
            for (room_id, publisher_id), publisher in server.publishers.items():
                per_room_publishers[room_id] = per_room_publishers.get(room_id, 0) + 1
                display = (publisher.display or "")[:DISPLAY_MAX] if show_display else ""
                info.add_metric([name, room_id, publisher_id, display], 1)
                publishing.add_metric([name, room_id, publisher_id], int(publisher.publishing))
            for subscriber in server.subscribers.values():
                room_id = subscriber.room
                per_room_subscribers[room_id] = per_room_subscribers.get(room_id, 0) + 1
            for room_id, room in server.rooms.items():
                labels = [name, room_id]
                if room.bitrate_cap is not None:
                    cap.add_metric(labels, room.bitrate_cap)
                if room.max_publishers is not None:
                    max_publishers.add_metric(labels, room.max_publishers)
                if room.recording is not None:
                    recording.add_metric(labels, int(room.recording))
                publishers.add_metric(labels, per_room_publishers.get(room_id, 0))
                subscribers.add_metric(labels, per_room_subscribers.get(room_id, 0))
        yield from (
            rooms,
            cap,
            max_publishers,
            publishers,
            subscribers,
            recording,
            info,
            publishing,
        )


def build_registry(collector: StateCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
