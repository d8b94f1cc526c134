"""Downstream impact per room (SPEC "VideoRoom") and per-server media quality: loss, jitter,
RTT, NACKs, link quality, media that stopped. No publisher label on any of these."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

from monitor.metrics.family import (
    PACE,
    PAUSE,
    Builder,
    Collector,
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
    Pause,
)
from monitor.signals.quality import QualitySignal
from monitor.state import State
from monitor.telemetry import Telemetry

ROOM = ("server", "room")
DEGRADED = GaugeFamily(
    "janus_videoroom_room_subscribers_degraded",
    "Subscribers sent more than their REMB allows (x1.1), or with outbound media link "
    "quality under 90 once known.",
    ROOM,
)
LOSS_MAX = GaugeFamily(
    "janus_videoroom_room_subscriber_loss_ratio_max",
    "The highest loss ratio among the room's subscribers: lost-by-remote over packets sent, "
    "last 5 s.",
    ROOM,
)
RTT = HistogramFamily("janus_media_rtt_seconds", "RTT of every media stats report.", ("server",))
JITTER = HistogramFamily(
    "janus_media_jitter_seconds",
    "Jitter of every media stats report, as Janus (local) or the peer (remote) measured it.",
    ("server", "side"),
)
LINK_QUALITY = HistogramFamily(
    "janus_media_link_quality",
    "Media link quality (0-100) of every report, inbound and outbound, once known.",
    ("server", "direction"),
)
LOSS = HistogramFamily(
    "janus_media_subscriber_loss_ratio",
    "Subscribers' loss ratio (last 5 s) at every stats report.",
    ("server",),
)
LOST = CounterFamily(
    "janus_media_packets_lost",
    "Packets lost: in (from peers, as Janus saw) and out (to peers, as they reported).",
    ("server", "direction"),
)
NACKS = CounterFamily(
    "janus_media_nacks", "NACKs received from peers and sent to them.", ("server", "direction")
)
STOPPED = CounterFamily(
    "janus_media_receiving_stopped",
    "Media that stopped arriving (receiving: false), by kind.",
    ("server", "kind"),
)


class QualityCollector(Collector):
    name = "quality"
    families = (DEGRADED, LOSS_MAX, RTT, JITTER, LINK_QUALITY, LOSS, LOST, NACKS, STOPPED)

    def __init__(self, telemetry: Telemetry, state: State, signal: QualitySignal) -> None:
        super().__init__(telemetry)
        self.state = state
        self.signal = signal

    def builders(self) -> Iterable[Builder]:
        return (self._rooms, self._distributions)

    def _rooms(self) -> Iterator[Metric | Pause]:
        degraded, loss_max = DEGRADED.new(), LOSS_MAX.new()
        downstream_of = self.signal.downstream.get
        for name, server in sorted(self.state.servers.items()):
            subscribers, in_room = server.subscribers, server.room_subscribers
            for n, room_id in enumerate(list(server.rooms), 1):  # a snapshot: the walk pauses
                if not n % PACE:
                    yield PAUSE
                count, worst = 0, None
                for key in in_room.get(room_id, ()):  # no pause in here: the set holds still
                    subscriber = subscribers[key]
                    down = downstream_of((name, *subscriber.handle))
                    if down is None or not subscriber.feeds or not down.sent_bitrate:
                        continue  # nothing sent (no feed left): not an overwhelmed subscriber
                    count += down.is_degraded
                    ratio = down.loss
                    if ratio is not None:
                        worst = ratio if worst is None else max(worst, ratio)
                degraded.add_metric([name, room_id], count)
                if worst is not None:
                    loss_max.add_metric([name, room_id], worst)
        yield from (degraded, loss_max)

    def _distributions(self) -> Iterator[Metric]:
        rtt, jitter, link, loss = RTT.new(), JITTER.new(), LINK_QUALITY.new(), LOSS.new()
        lost, nacks, stopped = LOST.new(), NACKS.new(), STOPPED.new()
        for name, quality in sorted(self.signal.servers.items()):
            rtt.add_metric([name], quality.rtt.buckets(), quality.rtt.total)
            loss.add_metric([name], quality.loss.buckets(), quality.loss.total)
            for side, histogram in sorted(quality.jitter.items()):
                jitter.add_metric([name, side], histogram.buckets(), histogram.total)
            for direction, histogram in sorted(quality.link_quality.items()):
                link.add_metric([name, direction], histogram.buckets(), histogram.total)
            for direction, count in sorted(quality.lost.items()):
                lost.add_metric([name, direction], count)
            for direction, count in sorted(quality.nacks.items()):
                nacks.add_metric([name, direction], count)
            for kind, count in sorted(quality.stopped.items()):
                stopped.add_metric([name, kind], count)
        yield from (rtt, jitter, link, loss, lost, nacks, stopped)
