"""The records decoding produces: the event envelope and every body type but VideoRoom's.

Bodies are plain slotted dataclasses with bounded values (see ``fields``); an Admin API reply
becomes a body too (``polls``), so polls reach state through the same door as events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from monitor.decode.fields import read_bool, read_text

TYPE_LABELS: dict[int, str] = {
    1: "session",
    2: "handle",
    4: "external",
    8: "jsep",
    16: "webrtc",
    32: "media",
    64: "plugin",
    128: "transport",
    256: "core",
}
UNKNOWN_TYPE_LABEL = "unknown"

VIDEOROOM = "janus.plugin.videoroom"


# --- bodies -------------------------------------------------------------------------------


class Body:
    """Base of every decoded event body."""

    __slots__ = ()


@dataclass(slots=True)
class SessionEvent(Body):
    name: str  # created | destroyed | timeout
    transport: str | None
    connection_id: str | None


@dataclass(slots=True)
class HandleEvent(Body):
    name: str  # attached | detached
    plugin: str | None


@dataclass(slots=True)
class ExternalEvent(Body):
    schema: str | None


@dataclass(slots=True)
class JsepEvent(Body):
    owner: str  # local (Janus sent it) | remote (the client sent it)
    sdp_type: str  # offer | answer
    sdp: str


@dataclass(slots=True)
class IceStateEvent(Body):
    state: str
    stream_id: int | None
    component_id: int | None


@dataclass(slots=True)
class CandidateEvent(Body):
    side: str  # local | remote
    candidate: str


@dataclass(slots=True)
class PairEndpoint:
    address: str | None
    port: int | None
    type: str | None
    transport: str | None


@dataclass(slots=True)
class SelectedPairEvent(Body):
    pair: str
    local: PairEndpoint | None
    remote: PairEndpoint | None


@dataclass(slots=True)
class DtlsEvent(Body):
    state: str
    retransmissions: int | None


@dataclass(slots=True)
class ConnectionEvent(Body):
    connection: str  # webrtcup | hangup
    reason: str | None


@dataclass(slots=True)
class MediaReceivingEvent(Body):
    kind: str
    mid: str | None
    substream: int | None
    receiving: bool
    seconds: int | None


@dataclass(slots=True)
class SlowLinkEvent(Body):
    kind: str
    mid: str | None
    direction: str  # uplink (Janus -> peer) | downlink (peer -> Janus)
    lost_lastsec: int | None


@dataclass(slots=True)
class MediaStat:
    """One medium (or simulcast layer) of a stats report; absent counters are None."""

    mid: str | None
    mindex: int | None
    kind: str  # audio | video | data (or what Janus sent, if new)
    layer: int  # simulcast layer: 0 main, 1 and 2 for video-sim1/2
    codec: str | None
    packets_received: int | None
    packets_sent: int | None
    bytes_received: int | None
    bytes_sent: int | None
    bytes_received_lastsec: int | None
    bytes_sent_lastsec: int | None
    lost: int | None
    lost_by_remote: int | None
    jitter_local: int | None
    jitter_remote: int | None
    in_link_quality: int | None
    in_media_link_quality: int | None
    out_link_quality: int | None
    out_media_link_quality: int | None
    nacks_received: int | None
    nacks_sent: int | None
    retransmissions_received: int | None
    rtt: int | None
    remb_bitrate: int | None
    # (mid, layer), one shared tuple per stream: set by decode.media.media_stat
    stream: tuple[str | None, int] = field(default=(None, 0), init=False)


@dataclass(slots=True)
class MediaStatsEvent(Body):
    stats: tuple[MediaStat, ...]


class TransportEvent(Body):
    """A transport's connection/request notice. Nothing tracks these yet, and they are a third
    to a half of all events, so fields are read from the JSON only when asked for."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, Any] | bytes) -> None:
        self._raw = raw  # bytes: the object's JSON (the fast path), parsed when first read

    def _object(self) -> dict[str, Any]:
        raw = self._raw
        if type(raw) is bytes:
            raw = self._raw = _parse_object(raw)
        return raw  # type: ignore[return-value]

    def _data(self, key: str) -> Any:
        data = self._object().get("data")
        return data.get(key) if type(data) is dict else None

    @property
    def transport(self) -> str | None:
        return read_text(self._object().get("transport"))

    @property
    def connection_id(self) -> str | None:
        return read_text(self._object().get("id"))

    @property
    def name(self) -> str | None:
        return read_text(self._data("event"))

    @property
    def admin_api(self) -> bool | None:
        return read_bool(self._data("admin_api"))


_parse_object = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(slots=True)
class ServerInfo:
    """What `info` (core `started` event or Admin `info`) says about a server."""

    name: str | None
    version: int | None
    version_string: str | None
    server_name: str | None
    local_ip: str | None
    public_ip: str | None
    public_ips: tuple[str, ...]
    ice_lite: bool | None
    ice_tcp: bool | None
    full_trickle: bool | None
    mdns_enabled: bool | None
    stun_server: str | None
    turn_server: str | None
    event_handlers: bool | None
    session_timeout: int | None
    plugins: tuple[str, ...]
    event_handler_names: tuple[str, ...]


@dataclass(slots=True)
class CoreEvent(Body):
    status: str  # started | shutdown | update
    info: ServerInfo | None
    signum: int | None


@dataclass(slots=True)
class PluginEvent(Body):
    """A plugin event this daemon does not model (another plugin, or a new VideoRoom event)."""

    plugin: str
    name: str | None


@dataclass(slots=True)
class UnknownEvent(Body):
    type: int


# --- the envelope -------------------------------------------------------------------------


class Event(msgspec.Struct, gc=False):
    """One event (or poll record) as state takes it. A msgspec Struct: the fast path's
    envelopes (``decode.batch``) are made in C as it parses and become the events themselves,
    where a Python ``__init__`` per event was a tenth of decoding. Not tracked by the cyclic
    GC: it refers to its body, and nothing refers back."""

    emitter: str
    type: int
    subtype: int
    timestamp: int  # µs since the epoch, wall clock of the Janus host; 0 when absent
    session_id: int | None
    handle_id: int | None
    opaque_id: str | None
    body: Body

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, UNKNOWN_TYPE_LABEL)


ENVELOPE_KEYS = frozenset(
    ("emitter", "type", "subtype", "timestamp", "session_id", "handle_id", "opaque_id", "event")
)
