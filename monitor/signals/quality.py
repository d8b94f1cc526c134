"""Media quality: downstream impact on subscribers, and per-server loss, jitter, RTT, NACK
and link-quality distributions (no publisher label anywhere) (janus-protocol.md §8).

A subscriber handle's media stats say what Janus sends it (``bytes-sent-lastsec``,
``packets-sent``), what its receiver asks for (``remb-bitrate``, on the mindex-0 entry once a
REMB arrived) and how it fares (``lost-by-remote``, ``out-media-link-quality``). It is
*degraded* while it is sent more than its REMB allows, or while its outbound media link
quality is low. Traps (real 1.1.2 with aiortc): link qualities start at 0 and stay there
until two receiver reports arrived, so they count only once they moved; ``lost-by-remote``
moves per receiver report, so loss is judged over a window of a few stats periods; a
subscriber left with no feed (its publisher kicked) is not an overwhelmed one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.decode.records import Event, MediaReceivingEvent, MediaStat, MediaStatsEvent
from monitor.signals.records import Samples
from monitor.state import Ops, RemovalHooks, Router, Server, Stage
from monitor.state.model import MAX_STREAMS_PER_HANDLE, Handle
from monitor.telemetry import Histogram

REMB_MARGIN = 1.1  # sent above 110% of the subscriber's REMB estimate: more than it can take
LINK_QUALITY_FLOOR = 90  # out-media-link-quality (0-100) below this, once it moved, is degraded
LOSS_WINDOW = 5.0  # seconds over which a subscriber's loss ratio is computed
SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
RATIO_BUCKETS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
QUALITY_BUCKETS = (10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 100.0)

HandleRef = tuple[str, int, int]


@dataclass(slots=True)
class StreamCounters:
    """One stream (mid, layer) of a handle as last reported: one record, not an entry in
    each of three dicts (a handle's quality data was a third of its bytes)."""

    sent_lastsec: int | None = None  # bytes Janus sent it in the last second
    packets_sent: int | None = None
    # lost, lost-by-remote, nacks received, nacks sent: what went up since is counted
    lost: int = 0
    lost_by_remote: int = 0
    nacks_received: int = 0
    nacks_sent: int = 0


@dataclass(slots=True)
class Downstream:
    """What Janus sends one handle, and how the receiver says it fares."""

    streams: dict[tuple[str | None, int], StreamCounters] = field(default_factory=dict)
    remb: int | None = None
    link_quality: int | None = None  # the lowest out-media-link-quality, once it moved
    moved: bool = False
    window: Samples = field(default_factory=lambda: Samples(3, 64))  # (at, packets, lost)
    # Bits/s sent over all streams, summed at each report: the scrape and the API read it for
    # every subscriber of every publisher's room.
    sent_bitrate: float = 0.0
    # As of the last report (nothing they depend on moves between reports): the scrape reads
    # them for every subscriber, as attributes rather than calls.
    loss: float | None = None
    is_degraded: bool = False

    def loss_ratio(self) -> float | None:
        """lost-by-remote over packets-sent across the window (None before two samples)."""
        if len(self.window) < 2:
            return None
        packets = self.window.span(1)
        return max(0.0, self.window.span(2) / packets) if packets > 0 else None

    def degraded(self) -> bool:
        over_remb = bool(self.remb) and self.sent_bitrate > (self.remb or 0) * REMB_MARGIN
        low_quality = self.moved and (self.link_quality or 0) < LINK_QUALITY_FLOOR
        return over_remb or low_quality


@dataclass(slots=True)
class ServerQuality:
    """One server's distributions and counters, over every handle (publishers' inbound and
    subscribers' outbound media alike)."""

    rtt: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
    jitter: dict[str, Histogram] = field(default_factory=dict)  # local | remote
    link_quality: dict[str, Histogram] = field(default_factory=dict)  # in | out
    loss: Histogram = field(default_factory=lambda: Histogram(RATIO_BUCKETS))
    lost: dict[str, int] = field(default_factory=dict)  # in | out -> packets
    nacks: dict[str, int] = field(default_factory=dict)  # received | sent
    stopped: dict[str, int] = field(default_factory=dict)  # kind -> receiving: false

    def histogram(
        self, table: dict[str, Histogram], key: str, bounds: tuple[float, ...]
    ) -> Histogram:
        found = table.get(key)
        if found is None:
            found = table[key] = Histogram(bounds)
        return found


class QualitySignal:
    def __init__(self) -> None:
        self.downstream: dict[HandleRef, Downstream] = {}
        self.servers: dict[str, ServerQuality] = {}

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        router.register(MediaStatsEvent, Stage.AFTER, self._on_stats)
        router.register(MediaReceivingEvent, Stage.AFTER, self._on_receiving)
        hooks.on_handle_removed(self._forget_handle)
        hooks.on_server_reset(self._forget_server)

    def server(self, name: str) -> ServerQuality:
        found = self.servers.get(name)
        if found is None:
            found = self.servers[name] = ServerQuality()
        return found

    def _on_receiving(
        self, ops: Ops, server: Server, event: Event, body: MediaReceivingEvent, now: float
    ) -> None:
        if not body.receiving:
            stopped = self.server(server.name).stopped
            kind = body.kind if body.kind in ("audio", "video") else "other"
            stopped[kind] = stopped.get(kind, 0) + 1

    def _on_stats(
        self, ops: Ops, server: Server, event: Event, body: MediaStatsEvent, now: float
    ) -> None:
        if event.session_id is None or event.handle_id is None:
            return
        if server.handle((event.session_id, event.handle_id)) is None:
            return
        ref = (server.name, event.session_id, event.handle_id)
        down = self.downstream.get(ref)
        if down is None:
            down = self.downstream[ref] = Downstream()
        self._distributions(server.name, down, body.stats)
        self._downstream(ref, down, body.stats, now)

    def _distributions(self, name: str, down: Downstream, stats: Iterable[MediaStat]) -> None:
        """The server's distributions and counters, and each stream's last counters.

        Written out per field, not as loops over (label, value) tuples: this runs for every
        stream of every stats report (20 k handles at 1 report a second)."""
        quality = self.server(name)
        streams = down.streams
        lost_table, nacks_table = quality.lost, quality.nacks
        for stat in stats:
            counters = streams.get(stat.stream)
            if counters is None:
                if len(streams) >= MAX_STREAMS_PER_HANDLE:
                    continue  # bounded per handle, like state's media
                counters = streams[stat.stream] = StreamCounters()
            if stat.rtt:
                quality.rtt.observe(stat.rtt / 1000.0)  # Janus reports milliseconds
            if stat.jitter_local is not None:
                quality.histogram(quality.jitter, "local", SECONDS_BUCKETS).observe(
                    stat.jitter_local / 1000
                )
            if stat.jitter_remote is not None:
                quality.histogram(quality.jitter, "remote", SECONDS_BUCKETS).observe(
                    stat.jitter_remote / 1000
                )
            if stat.in_media_link_quality:  # 0 = not known yet (no receiver reports)
                quality.histogram(quality.link_quality, "in", QUALITY_BUCKETS).observe(
                    stat.in_media_link_quality
                )
            if stat.out_media_link_quality:
                quality.histogram(quality.link_quality, "out", QUALITY_BUCKETS).observe(
                    stat.out_media_link_quality
                )
            # Counters are per PeerConnection; what went up since the last report is counted
            # (a value below the last one is a new PeerConnection's: all of it is new).
            counters.lost = _counted(lost_table, "in", stat.lost, counters.lost)
            counters.lost_by_remote = _counted(
                lost_table, "out", stat.lost_by_remote, counters.lost_by_remote
            )
            counters.nacks_received = _counted(
                nacks_table, "received", stat.nacks_received, counters.nacks_received
            )
            counters.nacks_sent = _counted(
                nacks_table, "sent", stat.nacks_sent, counters.nacks_sent
            )

    def _downstream(
        self, ref: HandleRef, down: Downstream, stats: Iterable[MediaStat], now: float
    ) -> None:
        streams = down.streams
        for stat in stats:
            counters = streams.get(stat.stream)
            if counters is None:
                continue  # over the per-handle bound (see _distributions)
            if stat.bytes_sent_lastsec is not None:
                counters.sent_lastsec = stat.bytes_sent_lastsec
            if stat.packets_sent is not None:
                counters.packets_sent = stat.packets_sent
            if stat.remb_bitrate is not None:
                down.remb = stat.remb_bitrate
            if stat.kind == "video" and stat.out_media_link_quality is not None:
                if stat.out_media_link_quality:
                    down.moved = True
                if down.moved:
                    down.link_quality = stat.out_media_link_quality
        # Bytes sent over all streams; for the loss window, the streams that reported packets
        # sent, with their lost-by-remote.
        sent = packets = lost = 0
        for counters in streams.values():
            if counters.sent_lastsec:
                sent += counters.sent_lastsec
            if counters.packets_sent is not None:
                packets += counters.packets_sent
                lost += counters.lost_by_remote
        down.sent_bitrate = 8.0 * sent
        down.window.append(now, packets, lost)
        down.window.drop_before(now - LOSS_WINDOW)
        ratio = down.loss = down.loss_ratio()
        down.is_degraded = down.degraded()
        if ratio is not None and down.sent_bitrate:
            self.server(ref[0]).loss.observe(ratio)

    # --- removal and views ---------------------------------------------------------------------

    def _forget_handle(self, server: Server, handle: Handle, reason: str) -> None:
        self.downstream.pop((server.name, handle.session_id, handle.handle_id), None)

    def _forget_server(self, server: Server) -> None:
        for ref in [r for r in self.downstream if r[0] == server.name]:
            del self.downstream[ref]

    def of(self, server: Server, key: tuple[int, int]) -> Downstream | None:
        return self.downstream.get((server.name, *key))


def _counted(table: dict[str, int], label: str, reported: int | None, before: int) -> int:
    """Count into ``table[label]`` what went up since ``before``, and return the new last.
    Below the last report it is a new PeerConnection's counter: all of it is new."""
    value = reported or 0
    if value != before:
        grown = value - before if value >= before else value
        if grown:
            table[label] = table.get(label, 0) + grown
    return value
