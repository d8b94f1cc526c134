"""Bodies typed straight from their JSON: the fast path's decoders for the commonest events.

The fast path keeps each envelope's ``event`` unparsed (``msgspec.Raw``): making a dict of
every body and reading it back key by key in Python was more than half of ingest for a
batch of session, handle and transport events (52 of 115 us a body went to the parse). A
body whose JSON holds exactly what its Python decoder reads without a note is typed here in
C. Any other (an unknown key, a value of the wrong type, a name over the limit) answers None,
and the caller parses it and runs the Python decoder, so records and notes are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from monitor.decode.events import MAX_SDP_CHARS
from monitor.decode.fields import JSON_OBJECT, TypedRequired, read_int, read_name, read_text
from monitor.decode.records import (
    Body,
    CandidateEvent,
    ConnectionEvent,
    DtlsEvent,
    HandleEvent,
    IceStateEvent,
    JsepEvent,
    SessionEvent,
    TransportEvent,
)


class _SessionTransport(msgspec.Struct, gc=False):
    """decode_session reads two keys of it and notes none of the others."""

    transport: Any = None
    id: Any = None


class _Session(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: TypedRequired
    transport: _SessionTransport | None = None


class _Handle(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: TypedRequired
    plugin: Any = None
    opaque_id: Any = None
    token: Any = None


# WebRTC bodies: decode_webrtc notes no key it does not read, so neither fails on one here.
class _Ice(msgspec.Struct, gc=False):
    ice: TypedRequired
    stream_id: Any = None
    component_id: Any = None


class _Local(msgspec.Struct, gc=False, rename={"candidate": "local-candidate"}):
    candidate: TypedRequired


class _Remote(msgspec.Struct, gc=False, rename={"candidate": "remote-candidate"}):
    candidate: TypedRequired


class _Dtls(msgspec.Struct, gc=False):
    dtls: TypedRequired
    retransmissions: Any = None


class _Connection(msgspec.Struct, gc=False):
    connection: TypedRequired
    reason: Any = None


class _Sdp(msgspec.Struct, gc=False):
    type: Any = None
    sdp: Any = None


class _Jsep(msgspec.Struct, gc=False):
    """decode_jsep notes no key it does not read either; ``jsep`` must be an object."""

    jsep: _Sdp
    owner: Any = None


_decode_session = msgspec.json.Decoder(_Session).decode
_decode_jsep = msgspec.json.Decoder(_Jsep).decode
_decode_handle = msgspec.json.Decoder(_Handle).decode
_decode_ice = msgspec.json.Decoder(_Ice).decode
_decode_local = msgspec.json.Decoder(_Local).decode
_decode_remote = msgspec.json.Decoder(_Remote).decode
_decode_dtls = msgspec.json.Decoder(_Dtls).decode
_decode_connection = msgspec.json.Decoder(_Connection).decode


def session_from_raw(raw: msgspec.Raw, subtype: int) -> Body | None:
    try:
        body = _decode_session(raw)
    except msgspec.DecodeError:  # ValidationError is one
        return None
    transport = body.transport
    if transport is None:
        return SessionEvent(body.name, None, None)
    return SessionEvent(body.name, read_name(transport.transport), read_text(transport.id))


def handle_from_raw(raw: msgspec.Raw, subtype: int) -> Body | None:
    try:
        body = _decode_handle(raw)
    except msgspec.DecodeError:
        return None
    return HandleEvent(body.name, read_name(body.plugin))


def transport_from_raw(raw: msgspec.Raw, subtype: int) -> Body | None:
    """Kept as its JSON, parsed if ever read (nothing reads these yet): any object is one."""
    if memoryview(raw)[0] != JSON_OBJECT:
        return None
    return TransportEvent(bytes(raw))


def jsep_from_raw(raw: msgspec.Raw, subtype: int) -> Body | None:
    """An offer or answer: parsed once into its record, not into a dict and then read."""
    try:
        body = _decode_jsep(raw)
    except msgspec.DecodeError:
        return None
    jsep = body.jsep
    return JsepEvent(
        read_text(body.owner) or "unknown",
        read_text(jsep.type) or "unknown",
        read_text(jsep.sdp, MAX_SDP_CHARS) or "",
    )


def webrtc_from_raw(raw: msgspec.Raw, subtype: int) -> Body | None:
    """ICE states, trickled candidates, DTLS states and the PeerConnection's up and down: the
    subtypes a call sends many of (the selected pair, with its nested endpoints, is rarer)."""
    try:
        if subtype == 1:
            ice = _decode_ice(raw)
            return IceStateEvent(ice.ice, read_int(ice.stream_id), read_int(ice.component_id))
        if subtype == 2:
            return CandidateEvent("local", _decode_local(raw).candidate)
        if subtype == 3:  # forwarded as received, sometimes with a trailing CRLF
            return CandidateEvent("remote", _decode_remote(raw).candidate.strip())
        if subtype == 5:
            dtls = _decode_dtls(raw)
            return DtlsEvent(dtls.dtls, read_int(dtls.retransmissions))
        if subtype == 6:
            connection = _decode_connection(raw)
            return ConnectionEvent(connection.connection, read_text(connection.reason))
    except msgspec.DecodeError:
        return None
    return None


RawDecoder = Callable[[msgspec.Raw, int], Body | None]
RAW_DECODERS: dict[int, RawDecoder] = {
    1: session_from_raw,
    2: handle_from_raw,
    8: jsep_from_raw,
    16: webrtc_from_raw,
    128: transport_from_raw,
}
"""Envelope type code -> typed decoder; a type without one is parsed and decoded in Python."""
