"""Per-publisher ingress bitrate and received bytes (SPEC "VideoRoom").

Sources: media stats events (``bytes-received-lastsec`` and ``bytes-received`` per mid and
simulcast layer) and a full ``handle_info`` (the poller's fallback when events are off or
late), both as MediaStat records. Simulcast layers (``video-sim1``/``video-sim2``, or
``video-simulcast-1/2`` in handle_info) are summed into their kind. Janus's byte counters
restart at 0 with each PeerConnection (republish on the same handle); the exported total
adds up the deltas, so it only ever grows while the handle lives.

Data is kept per handle, keyed (server, session, handle), and attributed to a publisher at
scrape time through state (the handle a publisher joined with).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.decode.polls import PolledHandle
from monitor.decode.records import ConnectionEvent, Event, MediaStat, MediaStatsEvent
from monitor.signals.records import Samples
from monitor.state import Ops, RemovalHooks, Router, Server, Stage
from monitor.state.model import MAX_STREAMS_PER_HANDLE, SUBSCRIBER, Handle

KINDS = ("audio", "video")  # what the bitrate metrics are labelled with; data m-lines aside
STALE_AFTER = 30.0  # seconds without stats after which a bitrate is no longer exported
HISTORY = 120  # bitrate samples kept per handle for the API (2 min at stats_period 1)

HandleRef = tuple[str, int, int]  # (server, session, handle)
LayerKey = tuple[str | None, int]  # (mid, simulcast layer)


@dataclass(slots=True)
class Layer:
    kind: str
    lastsec: int | None  # bytes received in the last second, as Janus last said
    raw: int | None  # Janus's bytes-received counter for this PeerConnection


@dataclass(slots=True)
class MediaIn:
    """What one handle received: per layer, and summed per kind.

    The two kinds are attributes, not dicts keyed by kind: the scrape, the API and the
    remediation policy read them for every publisher several times a second, and two small
    dicts per publisher were 0.5 KB and a lookup each."""

    # The state's record of the handle: the same object while the handle is tracked (its
    # removal drops this record), so the scrape needs no session and handle lookups.
    handle: Handle | None = None
    layers: dict[LayerKey, Layer] = field(default_factory=dict)
    # Bytes received per kind, monotonic (None: that kind never reported a counter).
    audio_bytes: int | None = None
    video_bytes: int | None = None
    updated: float = 0.0  # monotonic clock of the last stats
    restarted: bool = False  # a hangup since: the next counters start from 0
    history: Samples = field(default_factory=lambda: Samples(2, HISTORY))  # (at, bits/s)
    # Bits/s per kind (simulcast layers summed) and in all, worked out when the layers
    # change; None when no layer of the kind reported.
    audio_rate: float | None = None
    video_rate: float | None = None
    total: float | None = None
    reports: int = 0  # stats reports taken, so what is derived from history can be cached
    period: tuple[int, float] | None = None  # (reports, seconds): the remediation policy's

    def bitrate(self, kind: str) -> float | None:
        """Bits/s of one kind, simulcast layers summed; None if no layer reported it."""
        return self.audio_rate if kind == "audio" else self.video_rate if kind == "video" else None

    def total_bitrate(self) -> float | None:
        return self.total

    @property
    def totals(self) -> dict[str, int]:
        """Bytes received per kind that reported a counter."""
        counted = {"audio": self.audio_bytes, "video": self.video_bytes}
        return {kind: value for kind, value in counted.items() if value is not None}

    def add_bytes(self, kind: str, grown: int) -> None:
        if kind == "audio":
            self.audio_bytes = (self.audio_bytes or 0) + grown
        else:
            self.video_bytes = (self.video_bytes or 0) + grown

    def recompute(self) -> None:
        audio = video = None
        for layer in self.layers.values():
            if layer.lastsec is not None:
                if layer.kind == "audio":
                    audio = (audio or 0.0) + 8.0 * layer.lastsec
                else:
                    video = (video or 0.0) + 8.0 * layer.lastsec
        self.audio_rate, self.video_rate = audio, video
        self.total = None if audio is None and video is None else (audio or 0.0) + (video or 0.0)


def over_cap(bitrate: float | None, cap: int | None, tolerance: float) -> bool:
    """Above the room's cap times the tolerance; an uncapped room (0) or unknown is never."""
    return bitrate is not None and bool(cap) and bitrate > (cap or 0) * tolerance


class BitrateSignal:
    def __init__(self, max_stale: float = STALE_AFTER) -> None:
        self.max_stale = max_stale
        self.handles: dict[HandleRef, MediaIn] = {}

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        router.register(MediaStatsEvent, Stage.AFTER, self._on_stats)
        router.register(PolledHandle, Stage.AFTER, self._on_polled)
        router.register(ConnectionEvent, Stage.AFTER, self._on_connection)
        hooks.on_handle_removed(self._forget_handle)
        hooks.on_server_reset(self._forget_server)

    # --- handlers ------------------------------------------------------------------------------

    def _on_stats(
        self, ops: Ops, server: Server, event: Event, body: MediaStatsEvent, now: float
    ) -> None:
        if event.session_id is not None and event.handle_id is not None:
            self.update(server, (event.session_id, event.handle_id), body.stats, now)

    def _on_polled(
        self, ops: Ops, server: Server, event: Event, body: PolledHandle, now: float
    ) -> None:
        if body.exists and body.media is not None:
            self.update(server, (body.session_id, body.handle_id), body.media, now)

    def _on_connection(
        self, ops: Ops, server: Server, event: Event, body: ConnectionEvent, now: float
    ) -> None:
        if body.connection != "hangup" or event.session_id is None or event.handle_id is None:
            return
        media = self.handles.get((server.name, event.session_id, event.handle_id))
        if media is not None:  # the next PeerConnection counts from 0; nothing flows now
            media.restarted = True
            for layer in media.layers.values():
                layer.lastsec = 0
            media.recompute()

    def update(
        self, server: Server, key: tuple[int, int], stats: Iterable[MediaStat], now: float
    ) -> None:
        handle = server.handle(key)
        if handle is None:  # not tracked (a late event, or over the handle limit)
            return
        if handle.role == SUBSCRIBER:  # what a subscriber sends in is RTCP: no series, no cap
            return  # (half the handles: 1 KB each of layers, totals and history saved)
        ref = (server.name, *key)
        media = self.handles.get(ref)
        if media is None:
            media = self.handles[ref] = MediaIn(handle)
        restarted, media.restarted = media.restarted, False
        if restarted:  # counters of the old PeerConnection mean nothing to the new one
            for old in media.layers.values():
                old.raw = None
        for stat in stats:
            if stat.kind not in KINDS:
                continue
            layer_key = stat.stream
            found = media.layers.get(layer_key)
            if found is None and len(media.layers) >= MAX_STREAMS_PER_HANDLE:
                continue  # a bounded number of layers per handle, like state's media
            layer = found if found is not None else Layer(stat.kind, None, None)
            media.layers[layer_key] = layer
            layer.lastsec = stat.bytes_received_lastsec
            raw = stat.bytes_received
            if raw is None:
                continue
            # From this PeerConnection's 0 when new, or when it went back (a restart we missed).
            grown = raw if layer.raw is None or raw < layer.raw else raw - layer.raw
            media.add_bytes(stat.kind, grown)
            layer.raw = raw
        media.updated = now
        media.reports += 1
        media.recompute()
        total = media.total_bitrate()
        if total is not None:
            media.history.append(now, total)

    # --- removal -------------------------------------------------------------------------------

    def _forget_handle(self, server: Server, handle: Handle, reason: str) -> None:
        self.handles.pop((server.name, handle.session_id, handle.handle_id), None)

    def _forget_server(self, server: Server) -> None:
        for ref in [r for r in self.handles if r[0] == server.name]:
            del self.handles[ref]

    # --- views ---------------------------------------------------------------------------------

    def of(self, server: Server, key: tuple[int, int] | None) -> MediaIn | None:
        return self.handles.get((server.name, *key)) if key is not None else None

    def fresh(self, media: MediaIn, now: float) -> bool:
        return now - media.updated <= self.max_stale
