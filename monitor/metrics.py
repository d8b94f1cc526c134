"""Prometheus metrics: built at scrape time from current state, so what is gone disappears.

``Stats`` holds the daemon's own counters as plain numbers (the webhook hot path only adds to
dicts); ``StateCollector.collect()`` turns state and stats into metric families and does no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
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

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
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

    def __init__(self, state: State, stats: Stats, expose_display: Callable[[], bool]) -> None:
        self.state = state
        self.stats = stats
        self.expose_display = expose_display

    def describe(self) -> list[Metric]:
        return []  # families are built per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._daemon()
        yield from self._videoroom()

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
            "or limit (over limits.max_tracked_handles).",
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
