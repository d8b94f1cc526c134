"""VideoRoom rooms and publishers, built from state at scrape time so gone ones vanish."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    PACE,
    PAUSE,
    Builder,
    Collector,
    GaugeFamily,
    Pause,
    SharedLabels,
    escape_value,
)
from monitor.state import State
from monitor.telemetry import Telemetry

DISPLAY_MAX = 64
PUBLISHER_LABELS = ("publisher", "room", "server")  # shared by the series of one publisher
ROOM = ("server", "room")

ROOMS = GaugeFamily("janus_videoroom_rooms", "VideoRoom rooms that exist.", ("server",))
CAP = GaugeFamily(
    "janus_videoroom_room_bitrate_cap_bits_per_second",
    "The room's bitrate cap (bits/s); 0 = no cap. Absent until known.",
    ROOM,
)
MAX_PUBLISHERS = GaugeFamily(
    "janus_videoroom_room_max_publishers",
    "The room's publishers limit. Absent until known.",
    ROOM,
)
PUBLISHERS = GaugeFamily(
    "janus_videoroom_room_publishers",
    "Publishers (publisher-type participants) in the room now.",
    ROOM,
)
SUBSCRIBERS = GaugeFamily(
    "janus_videoroom_room_subscribers", "Subscriber handles in the room now.", ROOM
)
RECORDING = GaugeFamily(
    "janus_videoroom_room_recording", "1 if the room records. Absent until known.", ROOM
)
PUBLISHER_INFO = GaugeFamily(
    "janus_videoroom_publisher_info",
    "Who the publisher is (display truncated to 64 characters).",
    ("server", "room", "publisher", "display"),
)
PUBLISHING = GaugeFamily(
    "janus_videoroom_publisher_publishing",
    "1 while the publisher's PeerConnection is up and publishing, 0 when joined only.",
    ("server", "room", "publisher"),
)


class VideoRoomCollector(Collector):
    name = "videoroom"
    families = (ROOMS, CAP, MAX_PUBLISHERS, PUBLISHERS, SUBSCRIBERS, RECORDING, PUBLISHER_INFO,
                PUBLISHING)  # fmt: skip

    def __init__(
        self,
        telemetry: Telemetry,
        state: State,
        expose_display: Callable[[], bool],
        shared: SharedLabels | None = None,
    ) -> None:
        super().__init__(telemetry)
        self.state = state
        self.expose_display = expose_display
        self.shared = shared or SharedLabels(PUBLISHER_LABELS)
        for family in (PUBLISHER_INFO, PUBLISHING):
            family.own_labels(self.shared)  # raises if a head would not sort first

    def builders(self) -> Iterable[Builder]:
        return (self._rooms, self._publishers)

    def _rooms(self) -> Iterator[Metric | Pause]:
        rooms, cap, max_publishers = ROOMS.new(), CAP.new(), MAX_PUBLISHERS.new()
        publishers, subscribers, recording = PUBLISHERS.new(), SUBSCRIBERS.new(), RECORDING.new()
        for name, server in sorted(self.state.servers.items()):
            if not server.rooms and not server.configured:
                continue
            rooms.add_metric([name], len(server.rooms))
            # A snapshot: the walk pauses for ingest, which may add or drop rooms meanwhile.
            for n, (room_id, room) in enumerate(list(server.rooms.items()), 1):
                if not n % PACE:
                    yield PAUSE
                labels = [name, room_id]
                if room.bitrate_cap is not None:
                    cap.add_metric(labels, room.bitrate_cap)
                if room.max_publishers is not None:
                    max_publishers.add_metric(labels, room.max_publishers)
                if room.recording is not None:
                    recording.add_metric(labels, int(room.recording))
                publishers.add_metric(labels, len(server.room_publishers.get(room_id, ())))
                subscribers.add_metric(labels, len(server.room_subscribers.get(room_id, ())))
        yield from (rooms, cap, max_publishers, publishers, subscribers, recording)

    def _publishers(self) -> Iterator[Metric | Pause]:
        info, publishing = PUBLISHER_INFO.new(), PUBLISHING.new()
        show_display = self.expose_display()
        add_info, add_publishing = info.lines.append, publishing.lines.append
        info_prefix, publishing_prefix = info.line_prefix(""), publishing.line_prefix("")
        shared = self.shared
        shared.walk(self.state.publisher_count())
        for name, server in sorted(self.state.servers.items()):
            if not server.rooms and not server.configured:
                continue
            for n, publisher in enumerate(list(server.publishers.values()), 1):  # a snapshot
                if not n % PACE:
                    yield PAUSE
                labels = shared.text((publisher.publisher_id, publisher.room, name))
                display = (publisher.display or "")[:DISPLAY_MAX] if show_display else ""
                add_info(f'{info_prefix}display="{escape_value(display)}",{labels}}} 1.0\n')
                add_publishing(f"{publishing_prefix}{labels}}} "
                               f"{'1.0' if publisher.publishing else '0.0'}\n")  # fmt: skip
        yield from (info, publishing)
