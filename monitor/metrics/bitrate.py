"""Per-publisher bitrate, received bytes and over-cap (SPEC "VideoRoom"), from the bitrate
signal and state at scrape time: a publisher that is gone has no series."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    PACE,
    PAUSE,
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    Pause,
    SharedLabels,
    go_float,
)
from monitor.metrics.videoroom import PUBLISHER_LABELS
from monitor.signals.bitrate import KINDS, BitrateSignal, over_cap
from monitor.state import PUBLISHER, State
from monitor.telemetry import Telemetry

PUBLISHER_KIND = ("server", "room", "publisher", "kind")
KIND_HEADS = {kind: f'kind="{kind}",' for kind in KINDS}

BITRATE = GaugeFamily(
    "janus_videoroom_publisher_bitrate_bits_per_second",
    "Ingress bitrate of the publisher's audio or video (simulcast layers summed), from the "
    "latest media stats or handle_info. Absent without stats for 30 s.",
    PUBLISHER_KIND,
)
RECEIVED = CounterFamily(
    "janus_videoroom_publisher_received_bytes",
    "Bytes received from the publisher; monotonic across PeerConnection restarts.",
    PUBLISHER_KIND,
)
OVER_CAP = GaugeFamily(
    "janus_videoroom_publisher_over_cap",
    "1 while the publisher's bitrate is above the room cap x remediation.over_bitrate."
    "tolerance; 0 otherwise, and in rooms without a cap.",
    ("server", "room", "publisher"),
)


class BitrateCollector(Collector):
    name = "bitrate"
    families = (BITRATE, RECEIVED, OVER_CAP)

    def __init__(
        self,
        telemetry: Telemetry,
        state: State,
        signal: BitrateSignal,
        tolerance: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        shared: SharedLabels | None = None,
    ) -> None:
        super().__init__(telemetry)
        self.state = state
        self.signal = signal
        self.tolerance = tolerance
        self.monotonic = monotonic
        self.shared = shared or SharedLabels(PUBLISHER_LABELS)
        for family in self.families:
            family.own_labels(self.shared)  # raises if a head would not sort first

    def builders(self) -> Iterable[Builder]:
        return (self._publishers,)

    def _publishers(self) -> Iterator[Metric | Pause]:
        now, tolerance = self.monotonic(), self.tolerance()
        bitrate, received, over = BITRATE.new(), RECEIVED.new(), OVER_CAP.new()
        # Bound once: this loop runs for every publisher on every scrape.
        add_bitrate, add_received, add_over = (
            bitrate.lines.append, received.lines.append, over.lines.append
        )  # fmt: skip
        shared = self.shared
        shared.walk(self.state.publisher_count())
        text, media_of = shared.text, self.signal.handles.get
        audio_rate, video_rate = (bitrate.line_prefix(KIND_HEADS[k]) for k in KINDS)
        audio_bytes, video_bytes = (received.line_prefix(KIND_HEADS[k]) for k in KINDS)
        over_prefix = over.line_prefix("")
        oldest = now - self.signal.max_stale
        for name, server in sorted(self.state.servers.items()):
            rooms = server.rooms
            # A snapshot of the values (no item tuples to allocate and collect): the walk pauses
            # for ingest, which may drop publishers meanwhile.
            for n, publisher in enumerate(list(server.publishers.values()), 1):
                if not n % PACE:
                    yield PAUSE
                key = publisher.handle
                if key is None:
                    continue
                media = media_of((name, *key))
                if media is None or media.handle is None or media.handle.role != PUBLISHER:
                    continue
                room_id = publisher.room
                labels = text((publisher.publisher_id, room_id, name))
                if media.audio_bytes is not None:
                    add_received(f"{audio_bytes}{labels}}} {go_float(media.audio_bytes)}\n")
                if media.video_bytes is not None:
                    add_received(f"{video_bytes}{labels}}} {go_float(media.video_bytes)}\n")
                if not (publisher.publishing and media.updated >= oldest):  # fresh stats only
                    continue
                if media.audio_rate is not None:
                    add_bitrate(f"{audio_rate}{labels}}} {go_float(media.audio_rate)}\n")
                if media.video_rate is not None:
                    add_bitrate(f"{video_rate}{labels}}} {go_float(media.video_rate)}\n")
                room = rooms.get(room_id)
                cap = room.bitrate_cap if room else None
                over_now = over_cap(media.total, cap, tolerance)
                add_over(f"{over_prefix}{labels}}} {'1.0' if over_now else '0.0'}\n")
        yield from (bitrate, received, over)
