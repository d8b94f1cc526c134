"""Decode Janus event-handler JSON into typed records (janus-protocol.md §1-2).

One registry maps the envelope ``type`` code to a decoder; every decoder has the same signature.
Unknown types, subtypes, plugin events and fields are counted in ``DecodeNotes`` and never fail
the event. Only an event that cannot be attributed or is structurally wrong (no emitter, a body
of the wrong JSON type, a VideoRoom event without its room) is rejected with ``DecodeError``.
Every value kept is bounded (``fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.decode.fields import (
    MAX_ID_CHARS,
    MAX_ITEMS_PER_FIELD,
    DecodeError,
    DecodeNotes,
    read_bool,
    read_id,
    read_int,
    read_name,
    read_text,
    required_object,
    required_text,
)
from monitor.decode.media import media_kind, stats_from_event
from monitor.decode.records import (
    ENVELOPE_KEYS,
    Body,
    CandidateEvent,
    ConnectionEvent,
    CoreEvent,
    DtlsEvent,
    Event,
    ExternalEvent,
    HandleEvent,
    IceStateEvent,
    JsepEvent,
    MediaReceivingEvent,
    MediaStatsEvent,
    PairEndpoint,
    PluginEvent,
    SelectedPairEvent,
    ServerInfo,
    SessionEvent,
    SlowLinkEvent,
    TransportEvent,
    UnknownEvent,
)
from monitor.decode.videoroom import PLUGIN_DECODERS

__all__ = ["DecodeError", "DecodeNotes", "decode_event", "parse_server_info"]

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


_str = read_text
_int = read_int
_bool = read_bool
_id = read_id
_object = required_object
_required_str = required_text

MAX_SDP_CHARS = 256 * 1024
"""An SDP: a large simulcast offer is about 10 kB; a longer one is read as empty."""


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
    return SessionEvent(name, read_name(transport.get("transport")), _str(transport.get("id")))


_HANDLE_KEYS = frozenset(("name", "plugin", "opaque_id", "token"))


def decode_handle(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if type(body) is not dict:
        raise DecodeError("handle event body is not a JSON object")
    name = _required_str(body, "name", "handle")
    if len(body) > 2 and not body.keys() <= _HANDLE_KEYS:
        notes.note("field")
    return HandleEvent(name, read_name(body.get("plugin")))


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


def is_stats_report(listed: bool, subtype: int) -> bool:
    """A media event that carries statistics: subtype 3, or one array per handle with
    combine_media_stats=true (sent as subtype 0); ``listed``: the body is an array."""
    return subtype == 3 or (subtype == 0 and listed)


def decode_media(body: Any, subtype: int, notes: DecodeNotes) -> Body:
    if is_stats_report(type(body) is list, subtype):
        # combine_media_stats=true sends one array per handle instead of one object per medium.
        entries = body[:MAX_ITEMS_PER_FIELD] if type(body) is list else [_object(body, "media")]
        if type(body) is list and len(body) > MAX_ITEMS_PER_FIELD:
            notes.note("field")
        return MediaStatsEvent(stats_from_event(entries, notes))
    body = _object(body, "media")
    kind, _ = media_kind(_str(body.get("media")))
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
