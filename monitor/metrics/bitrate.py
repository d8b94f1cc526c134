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
)
from monitor.signals.bitrate import KINDS, BitrateSignal, over_cap
from monitor.state import PUBLISHER, State
from monitor.telemetry import Telemetry

PUBLISHER_KIND = ("server", "room", "publisher", "kind")

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
    ) -> None:
        super().__init__(telemetry)
        self.state = state
        self.signal = signal
        self.tolerance = tolerance
        self.monotonic = monotonic

    def builders(self) -> Iterable[Builder]:
        return (self._publishers,)

    def _publishers(self) -> Iterator[Metric | Pause]:
        now, tolerance = self.monotonic(), self.tolerance()
        bitrate, received, over = BITRATE.new(), RECEIVED.new(), OVER_CAP.new()
        for name, server in sorted(self.state.servers.items()):
            # A snapshot of the values (no item tuples to allocate and collect): the walk pauses
            # for ingest, which may drop publishers meanwhile.
            for n, publisher in enumerate(list(server.publishers.values()), 1):
                if not n % PACE:
                    yield PAUSE
                room_id, publisher_id = publisher.room, publisher.publisher_id
                handle = server.handle(publisher.handle) if publisher.handle else None
                media = self.signal.of(server, publisher.handle)
                if handle is None or handle.role != PUBLISHER or media is None:
                    continue
                labels = [name, room_id, publisher_id]
                for kind in KINDS:
                    if kind in media.totals:
                        received.add_metric([*labels, kind], media.totals[kind])
                if not (publisher.publishing and self.signal.fresh(media, now)):
                    continue
                for kind in KINDS:
                    rate = media.bitrate(kind)
                    if rate is not None:
                        bitrate.add_metric([*labels, kind], rate)
                room = server.rooms.get(room_id)
                cap = room.bitrate_cap if room else None
                over.add_metric(labels, int(over_cap(media.total_bitrate(), cap, tolerance)))
        yield from (bitrate, received, over)
