"""Decode Janus event-handler JSON into typed records (janus-protocol.md §1-2).

One registry maps the envelope ``type`` code to a decoder; every decoder has the same signature.
Unknown types, subtypes, plugin events and fields are counted in ``DecodeNotes`` and never fail
the event. Only an event that cannot be attributed or is structurally wrong (no emitter, a body
of the wrong JSON type, a VideoRoom event without its room) is rejected with ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.decode.fields import (
    MAX_ID_CHARS,
    MAX_ITEMS_PER_FIELD,
    read_bool,
    read_id,
    read_int,
    read_text,
)

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


class DecodeError(ValueError):
    """The event is unusable; the message says why (it is sent back to the client)."""


@dataclass(slots=True)
class DecodeNotes:
    """What a batch contained that this decoder does not know; counted, never fatal."""

    unknown: dict[str, int] = field(default_factory=dict)

    def note(self, what: str) -> None:
        self.unknown[what] = self.unknown.get(what, 0) + 1


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


@dataclass(slots=True)
class MediaStatsEvent(Body):
    stats: tuple[MediaStat, ...]


class TransportEvent(Body):
    """A transport's connection/request notice. Nothing tracks these yet, and they are a third
    to a half of all events, so fields are read from the JSON only when asked for."""

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    def _data(self, key: str) -> Any:
        data = self._raw.get("data")
        return data.get(key) if type(data) is dict else None

    @property
    def transport(self) -> str | None:
        return _str(self._raw.get("transport"))

    @property
    def connection_id(self) -> str | None:
        return _str(self._raw.get("id"))

    @property
    def name(self) -> str | None:
        return _str(self._data("event"))

    @property
    def admin_api(self) -> bool | None:
        return _bool(self._data("admin_api"))


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


# VideoRoom (janus-protocol.md §2). Room and participant ids are kept as strings so that
# string_ids servers and numeric ones share one code path (and one label format).


@dataclass(slots=True)
class PublisherStream:
    mid: str | None
    kind: str | None
    codec: str | None
    simulcast: bool
    disabled: bool


@dataclass(slots=True)
class SubscriberStream:
    mid: str | None
    kind: str | None
    active: bool
    feed: str | None


@dataclass(slots=True)
class RoomCreated(Body):
    room: str


@dataclass(slots=True)
class RoomEdited(Body):
    room: str


@dataclass(slots=True)
class RoomDestroyed(Body):
    room: str


@dataclass(slots=True)
class PublisherJoined(Body):
    room: str
    publisher: str
    display: str | None


@dataclass(slots=True)
class PublisherConfigured(Body):
    room: str
    publisher: str
    bitrate: int | None


@dataclass(slots=True)
class PublisherPublished(Body):
    """`published`, or a publisher-side `updated` (``update`` True): the stream set now."""

    room: str
    publisher: str
    display: str | None
    streams: tuple[PublisherStream, ...]
    update: bool


@dataclass(slots=True)
class PublisherGone(Body):
    """`unpublished` (still in the room), `leaving` or `kicked` (out of the room)."""

    room: str
    publisher: str | None
    reason: str  # unpublished | leaving | kicked

    @property
    def left_room(self) -> bool:
        return self.reason != "unpublished"


@dataclass(slots=True)
class SubscriberStreams(Body):
    """`subscribing`, or a subscriber-side `updated`: what the subscriber handle receives now."""

    room: str
    streams: tuple[SubscriberStream, ...]
    update: bool


@dataclass(slots=True)
class SubscriberUp(Body):
    room: str | None  # an integer 0 on string_ids servers (a 1.1.2 bug): not trusted


@dataclass(slots=True)
class SubscriberUnsubscribed(Body):
    room: str
    feed: str | None
    mid: str | None


@dataclass(slots=True)
class VideoRoomNotice(Body):
    """VideoRoom events that carry no state: switched, talking, moderated, forwarders."""

    name: str
    room: str | None
    publisher: str | None


# --- the envelope -------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
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

Decoder = Callable[[Any, int, DecodeNotes], Body]


def decode_event(raw: Any, notes: DecodeNotes) -> Event:
    """Validate one event object and decode its body; raises DecodeError if unusable."""
    if type(raw) is not dict:
        raise DecodeError("event is not a JSON object")
    get = raw.get
    event_type = get("type")
    emitter = get("emitter")
    subtype = get("subtype")
    timestamp = get("timestamp")
    session_id = get("session_id")
    handle_id = get("handle_id")
    opaque_id = get("opaque_id")
    body_raw = get("event")
    if type(event_type) is not int:
        raise DecodeError("event has no integer 'type'")
    if type(emitter) is not str or not emitter:
        raise DecodeError("event has no 'emitter' string")
    if len(emitter) > MAX_ID_CHARS or not emitter.isprintable():
        # It becomes a server's name and label: the rule config applies to target names.
        raise DecodeError(f"event 'emitter' must be 1 to {MAX_ID_CHARS} printable characters")
    if type(subtype) not in _OPTIONAL_INT or type(timestamp) not in _OPTIONAL_INT:
        raise DecodeError("event 'subtype' and 'timestamp' must be integers")
    if type(session_id) not in _OPTIONAL_INT or type(handle_id) not in _OPTIONAL_INT:
        raise DecodeError("event 'session_id' and 'handle_id' must be integers")
    if opaque_id is not None:
        if type(opaque_id) is str:
            opaque_id = read_text(opaque_id)
        else:  # Janus only sends strings; anything else is not kept (nor stringified)
            opaque_id = None
            notes.note("field")
    # Only an envelope with more keys than the known ones it holds can carry an unknown one.
    known = (
        2
        + (subtype is not None)
        + (timestamp is not None)
        + (session_id is not None)
        + (handle_id is not None)
        + (opaque_id is not None)
        + (body_raw is not None)
    )
    if len(raw) > known and not raw.keys() <= ENVELOPE_KEYS:
        notes.note("field")
    subtype = subtype or 0
    decoder = DECODERS.get(event_type)
    if decoder is None:
        notes.note("type")
        body: Body = UnknownEvent(event_type)
    else:
        body = decoder(body_raw, subtype, notes)
    return Event(
        emitter, event_type, subtype, timestamp or 0, session_id, handle_id, opaque_id, body
    )


_OPTIONAL_INT = frozenset((int, type(None)))


# --- helpers ------------------------------------------------------------------------------


def _object(body: Any, what: str) -> dict[str, Any]:
    if type(body) is not dict:
        raise DecodeError(f"{what} event body is not a JSON object")
    return body


_str = read_text
_int = read_int
_bool = read_bool
_id = read_id

MAX_REQUIRED_CHARS = 1024
"""A state name, reason or candidate line: real ones are under 300 characters."""

MAX_SDP_CHARS = 256 * 1024
"""An SDP: a large simulcast offer is about 10 kB; a longer one is read as empty."""


def _required_str(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise DecodeError(f"{what} event has no '{key}' string")
    if len(value) > MAX_REQUIRED_CHARS:
        raise DecodeError(f"{what} event '{key}' is longer than {MAX_REQUIRED_CHARS} characters")
    return value


def _checked_id(data: dict[str, Any], key: str, name: str, what: str) -> str:
    value = data.get(key)
    checked = read_id(value)
    if checked is not None:
        return checked
    if type(value) is str and value:
        raise DecodeError(
            f"videoroom '{name}' event {what} id is longer than {MAX_ID_CHARS} characters"
        )
    if type(value) is int:
        raise DecodeError(f"videoroom '{name}' event {what} id is not a 64-bit integer")
    raise DecodeError(f"videoroom '{name}' event has no {what} id")


def _required_room(data: dict[str, Any], name: str) -> str:
    return _checked_id(data, "room", name, "room")


# --- per-type decoders (the registry, keyed by the envelope type code) --------------------

_SESSION_KEYS = frozenset(("name", "transport"))


def decode_session(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if type(body) is not dict:
        raise DecodeError("session event body is not a JSON object")
    name = _required_str(body, "name", "session")
    if len(body) > 2 and not body.keys() <= _SESSION_KEYS:
        notes.note("field")
    transport = body.get("transport")
    if type(transport) is not dict:
        return SessionEvent(name, None, None)
    return SessionEvent(name, _str(transport.get("transport")), _str(transport.get("id")))


_HANDLE_KEYS = frozenset(("name", "plugin", "opaque_id", "token"))


def decode_handle(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if type(body) is not dict:
        raise DecodeError("handle event body is not a JSON object")
    name = _required_str(body, "name", "handle")
    if len(body) > 2 and not body.keys() <= _HANDLE_KEYS:
        notes.note("field")
    return HandleEvent(name, _str(body.get("plugin")))


def decode_external(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    body = _object(body, "external")
    return ExternalEvent(_str(body.get("schema")))


def decode_jsep(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    body = _object(body, "jsep")
    jsep = body.get("jsep")
    if type(jsep) is not dict:
        raise DecodeError("jsep event has no 'jsep' object")
    return JsepEvent(
        _str(body.get("owner")) or "unknown",
        _str(jsep.get("type")) or "unknown",
        _str(jsep.get("sdp"), MAX_SDP_CHARS) or "",
    )


def _endpoint(value: Any) -> PairEndpoint | None:
    if type(value) is not dict:
        return None
    return PairEndpoint(
        _str(value.get("address")),
        _int(value.get("port")),
        _str(value.get("type")),
        _str(value.get("transport")),
    )


def decode_webrtc(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    body = _object(body, "webrtc")
    if subtype == 1:
        return IceStateEvent(
            _required_str(body, "ice", "webrtc ice"),
            _int(body.get("stream_id")),
            _int(body.get("component_id")),
        )
    if subtype == 2:
        return CandidateEvent("local", _required_str(body, "local-candidate", "webrtc"))
    if subtype == 3:
        # Janus forwards the attribute as received, sometimes with a trailing CRLF.
        return CandidateEvent("remote", _required_str(body, "remote-candidate", "webrtc").strip())
    if subtype == 4:
        candidates = body.get("candidates")
        local = remote = None
        if type(candidates) is dict:
            local, remote = _endpoint(candidates.get("local")), _endpoint(candidates.get("remote"))
        return SelectedPairEvent(_required_str(body, "selected-pair", "webrtc"), local, remote)
    if subtype == 5:
        return DtlsEvent(
            _required_str(body, "dtls", "webrtc dtls"), _int(body.get("retransmissions"))
        )
    if subtype == 6:
        return ConnectionEvent(
            _required_str(body, "connection", "webrtc"), _str(body.get("reason"))
        )
    notes.note("subtype")
    return UnknownEvent(16)


def _media_kind(media: str | None) -> tuple[str, int]:
    if media is None:
        return "unknown", 0
    if media.startswith("video-sim"):
        layer = media[len("video-sim") :]
        return "video", int(layer) if layer.isdecimal() and len(layer) <= 2 else 0
    return media, 0


_STAT_KEYS = frozenset(
    (
        "mid", "mindex", "media", "codec", "base", "rtt", "rtt-values", "lost", "lost-by-remote",
        "jitter-local", "jitter-remote", "in-link-quality", "in-media-link-quality",
        "out-link-quality", "out-media-link-quality", "packets-received", "packets-sent",
        "bytes-received", "bytes-sent", "bytes-received-lastsec", "bytes-sent-lastsec",
        "nacks-received", "nacks-sent", "retransmissions-received", "remb-bitrate",
    )
)  # fmt: skip


def _media_stat(entry: Any, notes: DecodeNotes) -> MediaStat | None:
    if type(entry) is not dict:
        notes.note("field")
        return None
    if not entry.keys() <= _STAT_KEYS:
        notes.note("field")
    get = entry.get
    kind, layer = _media_kind(_str(get("media")))
    return MediaStat(
        _id(get("mid")),
        _int(get("mindex")),
        kind,
        layer,
        _str(get("codec")),
        _int(get("packets-received")),
        _int(get("packets-sent")),
        _int(get("bytes-received")),
        _int(get("bytes-sent")),
        _int(get("bytes-received-lastsec")),
        _int(get("bytes-sent-lastsec")),
        _int(get("lost")),
        _int(get("lost-by-remote")),
        _int(get("jitter-local")),
        _int(get("jitter-remote")),
        _int(get("in-link-quality")),
        _int(get("in-media-link-quality")),
        _int(get("out-link-quality")),
        _int(get("out-media-link-quality")),
        _int(get("nacks-received")),
        _int(get("nacks-sent")),
        _int(get("retransmissions-received")),
        _int(get("rtt")),
        _int(get("remb-bitrate")),
    )


def decode_media(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if subtype == 3 or (subtype == 0 and type(body) is list):
        # combine_media_stats=true sends one array per handle instead of one object per medium.
        entries = body[:MAX_ITEMS_PER_FIELD] if type(body) is list else [_object(body, "media")]
        if type(body) is list and len(body) > MAX_ITEMS_PER_FIELD:
            notes.note("field")
        stats = tuple(s for s in (_media_stat(e, notes) for e in entries) if s is not None)
        return MediaStatsEvent(stats)
    body = _object(body, "media")
    kind, _ = _media_kind(_str(body.get("media")))
    mid = _id(body.get("mid"))
    if subtype == 1:
        receiving = body.get("receiving")
        if type(receiving) is not bool:
            raise DecodeError("media event has no boolean 'receiving'")
        return MediaReceivingEvent(
            kind, mid, _int(body.get("substream")), receiving, _int(body.get("seconds"))
        )
    if subtype == 2:
        return SlowLinkEvent(
            kind,
            mid,
            _required_str(body, "slow_link", "media slow_link"),
            _int(body.get("lost_lastsec")),
        )
    notes.note("subtype")
    return UnknownEvent(32)


def decode_transport(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if type(body) is not dict:
        raise DecodeError("transport event body is not a JSON object")
    return TransportEvent(body)


def parse_server_info(info: dict[str, Any]) -> ServerInfo:
    """Read the fields a monitor needs out of an `info` reply (Admin API or core event)."""
    public_ips = info.get("public-ips")
    plugins = info.get("plugins")
    handlers = info.get("events")
    return ServerInfo(
        name=_str(info.get("name")),
        version=_int(info.get("version")),
        version_string=_str(info.get("version_string")),
        server_name=_str(info.get("server-name")),
        local_ip=_str(info.get("local-ip")),
        public_ip=_str(info.get("public-ip")),
        public_ips=tuple(
            ip for ip in public_ips[:MAX_ITEMS_PER_FIELD] if type(ip) is str and len(ip) <= 64
        )
        if type(public_ips) is list
        else (),
        ice_lite=_bool(info.get("ice-lite")),
        ice_tcp=_bool(info.get("ice-tcp")),
        full_trickle=_bool(info.get("full-trickle")),
        mdns_enabled=_bool(info.get("mdns-enabled")),
        stun_server=_str(info.get("stun-server")),
        turn_server=_str(info.get("turn-server")),
        event_handlers=_bool(info.get("event_handlers")),
        session_timeout=_int(info.get("session-timeout")),
        plugins=_names(plugins),
        event_handler_names=_names(handlers),
    )


def _names(value: Any) -> tuple[str, ...]:
    """The keys of `info`'s plugins / events objects (package names), bounded."""
    if type(value) is not dict:
        return ()
    return tuple(key for key in list(value)[:MAX_ITEMS_PER_FIELD] if len(key) <= MAX_ID_CHARS)


def decode_core(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    body = _object(body, "core")
    info = body.get("info")
    status = _str(body.get("status"))
    if status is None:
        status = {1: "started", 2: "shutdown"}.get(subtype, "unknown")
        notes.note("field")
    return CoreEvent(
        status,
        parse_server_info(info) if status == "started" and type(info) is dict else None,
        _int(body.get("signum")),
    )


def decode_plugin(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    body = _object(body, "plugin")
    plugin = _str(body.get("plugin")) or "unknown"
    data = body.get("data")
    decoder = PLUGIN_DECODERS.get(plugin)
    if decoder is None:
        name = _str(data.get("event")) if type(data) is dict else None
        return PluginEvent(plugin, name)
    return decoder(_object(data, plugin), notes)


DECODERS: dict[int, Decoder] = {
    1: decode_session,
    2: decode_handle,
    4: decode_external,
    8: decode_jsep,
    16: decode_webrtc,
    32: decode_media,
    64: decode_plugin,
    128: decode_transport,
    256: decode_core,
}

# --- VideoRoom ----------------------------------------------------------------------------

VideoRoomDecoder = Callable[[dict[str, Any], str, DecodeNotes], Body]


def _publisher_streams(value: Any) -> tuple[PublisherStream, ...]:
    if type(value) is not list:
        return ()
    return tuple(
        PublisherStream(
            _id(s.get("mid")),
            _str(s.get("type")),
            _str(s.get("codec")),
            bool(s.get("simulcast")),
            bool(s.get("disabled")),
        )
        for s in value[:MAX_ITEMS_PER_FIELD]
        if type(s) is dict
    )


def subscriber_streams(value: Any) -> tuple[SubscriberStream, ...]:
    """The subscriber stream summary of VideoRoom events and handle_info, one entry per feed."""
    if type(value) is not list:
        return ()
    streams: list[SubscriberStream] = []
    for s in value:
        if type(s) is not dict:
            continue
        active = s.get("active", True) is not False
        mid, kind = _id(s.get("mid")), _str(s.get("type"))
        feed = _id(s.get("feed_id"))
        sources = s.get("source_ids")
        if feed is None and type(sources) is list:
            # A data m-line relays several publishers: one entry per source keeps feeds complete.
            streams.extend(SubscriberStream(mid, kind, active, _id(src)) for src in sources)
        else:
            streams.append(SubscriberStream(mid, kind, active, feed))
        if len(streams) >= MAX_ITEMS_PER_FIELD:
            break
    return tuple(streams[:MAX_ITEMS_PER_FIELD])


def _vr_room(cls: type[RoomCreated] | type[RoomEdited] | type[RoomDestroyed]) -> VideoRoomDecoder:
    def decode(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
        return cls(_required_room(data, name))

    return decode


def _required_publisher(data: dict[str, Any], name: str) -> str:
    return _checked_id(data, "id", name, "participant")


def _vr_joined(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return PublisherJoined(
        _required_room(data, name), _required_publisher(data, name), _str(data.get("display"))
    )


def _vr_configured(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return PublisherConfigured(
        _required_room(data, name), _required_publisher(data, name), _int(data.get("bitrate"))
    )


def _vr_published(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return PublisherPublished(
        _required_room(data, name),
        _required_publisher(data, name),
        _str(data.get("display")),
        _publisher_streams(data.get("streams")),
        update=False,
    )


def _vr_updated(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    room = _required_room(data, name)
    if "id" in data:
        return PublisherPublished(
            room,
            _required_publisher(data, name),
            _str(data.get("display")),
            _publisher_streams(data.get("streams")),
            update=True,
        )
    return SubscriberStreams(room, subscriber_streams(data.get("streams")), update=True)


def _vr_gone(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return PublisherGone(_required_room(data, name), _id(data.get("id")), name)


def _vr_subscribing(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return SubscriberStreams(
        _required_room(data, name), subscriber_streams(data.get("streams")), update=False
    )


def _vr_subscribed(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return SubscriberUp(_id(data.get("room")))


def _vr_unsubscribed(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    return SubscriberUnsubscribed(
        _required_room(data, name), _id(data.get("feed")), _id(data.get("mid"))
    )


def _vr_notice(data: dict[str, Any], name: str, notes: DecodeNotes) -> Body:
    publisher = data.get("id", data.get("publisher_id"))
    return VideoRoomNotice(name, _id(data.get("room")), _id(publisher))


VIDEOROOM_EVENTS: dict[str, VideoRoomDecoder] = {
    "created": _vr_room(RoomCreated),
    "edited": _vr_room(RoomEdited),
    "destroyed": _vr_room(RoomDestroyed),
    "joined": _vr_joined,
    "configured": _vr_configured,
    "published": _vr_published,
    "updated": _vr_updated,
    "unpublished": _vr_gone,
    "leaving": _vr_gone,
    "kicked": _vr_gone,
    "subscribing": _vr_subscribing,
    "subscribed": _vr_subscribed,
    "unsubscribed": _vr_unsubscribed,
    "switched": _vr_notice,
    "rtp_forward": _vr_notice,
    "stop_rtp_forward": _vr_notice,
    "talking": _vr_notice,
    "stopped-talking": _vr_notice,
    "moderated": _vr_notice,
}


def decode_videoroom(data: dict[str, Any], notes: DecodeNotes) -> Body:
    # Most events name themselves in data.event; talking and moderated use data.videoroom.
    name = data.get("event")
    if type(name) is not str:
        name = data.get("videoroom")
    if type(name) is not str:
        notes.note("plugin_event")
        return PluginEvent(VIDEOROOM, None)
    decoder = VIDEOROOM_EVENTS.get(name)
    if decoder is None:
        notes.note("plugin_event")
        return PluginEvent(VIDEOROOM, _str(name))
    return decoder(data, name, notes)


PLUGIN_DECODERS: dict[str, Callable[[dict[str, Any], DecodeNotes], Body]] = {
    VIDEOROOM: decode_videoroom,
}
