"""Media statistics, one builder for both sources: media stats events (janus-protocol.md
§1.3, type 32) and a full ``handle_info``'s ``webrtc.media`` (§3.6). Each source has a table
naming, in MediaStat's counter order, where each counter is found."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import msgspec

from monitor.decode.fields import (
    MAX_ITEMS_PER_FIELD,
    MAX_TEXT_CHARS,
    MAX_TOKEN_CHARS,
    DecodeNotes,
    TypedId,
    TypedInt,
    object_of,
    read_id,
    read_int,
    read_kind,
    read_text,
    read_token,
)
from monitor.decode.records import MediaStat

# The counter fields of MediaStat, after mid, mindex, kind, layer and codec.
COUNTERS = (
    "packets_received", "packets_sent", "bytes_received", "bytes_sent", "bytes_received_lastsec",
    "bytes_sent_lastsec", "lost", "lost_by_remote", "jitter_local", "jitter_remote",
    "in_link_quality", "in_media_link_quality", "out_link_quality", "out_media_link_quality",
    "nacks_received", "nacks_sent", "retransmissions_received", "rtt", "remb_bitrate",
)  # fmt: skip

# Where a media stats event has each counter: its own key, in COUNTERS order.
EVENT_KEYS = tuple(name.replace("_", "-") for name in COUNTERS)

# Where handle_info has each: (section, key); sections are in/out stats and rtcp.main or simN.
# handle_info has no REMB value, and its NACK counts are per direction of the media.
POLL_KEYS: tuple[tuple[str, str] | None, ...] = (
    ("in", "packets"), ("out", "packets"), ("in", "bytes"), ("out", "bytes"),
    ("in", "bytes_lastsec"), ("out", "bytes_lastsec"), ("rtcp", "lost"),
    ("rtcp", "lost-by-remote"), ("rtcp", "jitter-local"), ("rtcp", "jitter-remote"),
    ("rtcp", "in-link-quality"), ("rtcp", "in-media-link-quality"), ("rtcp", "out-link-quality"),
    ("rtcp", "out-media-link-quality"),
    ("out", "nacks"),  # the peer's NACKs of what Janus sent
    ("in", "nacks"), ("in", "retransmissions"), ("rtcp", "rtt"), None,
)  # fmt: skip

_EVENT_STAT_KEYS = frozenset(("mid", "mindex", "media", "codec", "base", "rtt-values", *EVENT_KEYS))


# One (mid, layer) tuple per stream name, shared by every report and every table that keys on
# it (state's media, the bitrate layers, quality's streams): 20 k handles with two streams
# each kept a copy of each key per table. Bounded: past it, keys are made per report.
STREAM_KEYS_MAX = 4096
_stream_keys: dict[tuple[str | None, int], tuple[str | None, int]] = {}


def stream_key(mid: str | None, layer: int) -> tuple[str | None, int]:
    key = (mid, layer)
    shared = _stream_keys.get(key)
    if shared is not None:
        return shared
    if len(_stream_keys) < STREAM_KEYS_MAX:
        _stream_keys[key] = key
    return key


def media_stat(
    mid: str | None,
    mindex: int | None,
    kind: str,
    layer: int,
    codec: str | None,
    counters: Iterable[Any],
) -> MediaStat:
    """The one MediaStat builder: ``counters`` are raw values in COUNTERS order."""
    stream = stream_key(mid, layer)
    stat = MediaStat(stream[0], mindex, kind, layer, codec, *map(read_int, counters))
    stat.stream = stream
    return stat


def media_kind(media: str | None) -> tuple[str, int]:
    """`media` of a stats event -> (kind, simulcast layer): video-sim1 is video layer 1;
    a kind other than audio, video or data is ``unknown``."""
    if media is None:
        return "unknown", 0
    if media.startswith("video-sim"):
        layer = media[len("video-sim") :]
        return "video", int(layer) if layer.isdecimal() and len(layer) <= 2 else 0
    return read_kind(media) or "unknown", 0


def stat_from_event(entry: Any, notes: DecodeNotes) -> MediaStat | None:
    """One entry of a media stats event (one medium or simulcast layer)."""
    if type(entry) is not dict:
        notes.note("field")
        return None
    if not entry.keys() <= _EVENT_STAT_KEYS:
        notes.note("field")
    get = entry.get
    kind, layer = media_kind(read_text(get("media")))
    return media_stat(
        read_id(get("mid")),
        read_int(get("mindex")),
        kind,
        layer,
        read_token(get("codec")),
        map(get, EVENT_KEYS),
    )


def stats_from_event(entries: list[Any], notes: DecodeNotes) -> tuple[MediaStat, ...]:
    """The entries of a media stats event: typed in C when every entry is clean, else entry
    by entry (the same records: ``typed_stats`` takes only what needs no note)."""
    typed = typed_stats(entries)
    if typed is not None:
        return typed
    return tuple(s for s in (stat_from_event(e, notes) for e in entries) if s is not None)


def typed_stats(entries: list[Any]) -> tuple[MediaStat, ...] | None:
    """What ``stat_from_event`` reads from entries that each hold only known keys with values
    it keeps as they are, at 2 us an entry instead of 5; None if any entry is not like that."""
    try:  # per entry: convert resolves a list[...] type on every call (1.4 us)
        typed = [_convert(entry, _TypedEntry) for entry in entries]
    except msgspec.ValidationError:
        return None
    return tuple(map(_from_typed, typed))


# read_token's test; \Z, not $, which also matches before a final newline
_Token = Annotated[str, msgspec.Meta(pattern=f"^[A-Za-z0-9._-]{{1,{MAX_TOKEN_CHARS}}}\\Z")]


class _TypedEntry(
    msgspec.Struct,
    rename=dict(zip(COUNTERS, EVENT_KEYS, strict=True)) | {"rtt_values": "rtt-values"},
    forbid_unknown_fields=True,
    gc=False,
):
    """One entry exactly as stat_from_event reads it, so a clean one needs no Python per key:
    any value it would drop or cut (a wrong type, a long string, a bad codec) fails here."""

    mid: TypedId | TypedInt | None = None
    mindex: TypedInt | None = None
    media: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)] | None = None
    codec: _Token | None = None
    base: Any = None
    rtt_values: Any = None
    packets_received: TypedInt | None = None
    packets_sent: TypedInt | None = None
    bytes_received: TypedInt | None = None
    bytes_sent: TypedInt | None = None
    bytes_received_lastsec: TypedInt | None = None
    bytes_sent_lastsec: TypedInt | None = None
    lost: TypedInt | None = None
    lost_by_remote: TypedInt | None = None
    jitter_local: TypedInt | None = None
    jitter_remote: TypedInt | None = None
    in_link_quality: TypedInt | None = None
    in_media_link_quality: TypedInt | None = None
    out_link_quality: TypedInt | None = None
    out_media_link_quality: TypedInt | None = None
    nacks_received: TypedInt | None = None
    nacks_sent: TypedInt | None = None
    retransmissions_received: TypedInt | None = None
    rtt: TypedInt | None = None
    remb_bitrate: TypedInt | None = None


_FIRST_COUNTER = _TypedEntry.__struct_fields__.index(COUNTERS[0])
assert _TypedEntry.__struct_fields__[_FIRST_COUNTER:] == COUNTERS


_convert = msgspec.convert
_as_tuple = msgspec.structs.astuple
_decode_entry = msgspec.json.Decoder(_TypedEntry).decode
_decode_entries = msgspec.json.Decoder(list[_TypedEntry]).decode


def typed_stats_json(raw: msgspec.Raw, listed: bool) -> tuple[MediaStat, ...] | None:
    """``typed_stats`` straight from a stats body's JSON (an array of entries when
    ``listed``, else one entry), with no dict made: None where the entries are not clean, or
    more than decode_media keeps (it cuts them, with a note)."""
    try:
        typed = _decode_entries(raw) if listed else [_decode_entry(raw)]
    except msgspec.DecodeError:  # ValidationError is one
        return None
    if len(typed) > MAX_ITEMS_PER_FIELD:
        return None
    return tuple(map(_from_typed, typed))


def _from_typed(entry: _TypedEntry) -> MediaStat:
    kind, layer = media_kind(entry.media)
    mid = entry.mid
    stream = stream_key(str(mid) if isinstance(mid, int) else mid, layer)
    stat = MediaStat(
        stream[0], entry.mindex, kind, layer, entry.codec, *_as_tuple(entry)[_FIRST_COUNTER:]
    )
    stat.stream = stream
    return stat


def _from_poll(
    mid: str | None, mindex: int | None, kind: str, layer: int, codec: str | None,
    sections: dict[str, dict[str, Any]],
) -> MediaStat:  # fmt: skip
    values = (sections[where[0]].get(where[1]) if where else None for where in POLL_KEYS)
    return media_stat(mid, mindex, kind, layer, codec, values)


def stats_from_handle_info(webrtc: Any) -> tuple[MediaStat, ...] | None:
    """Per-mid stats of a full handle_info, in the shape of media stats events; None when it
    has no media section (no PeerConnection)."""
    media = object_of(webrtc).get("media")
    if type(media) is not dict:
        return None
    stats: list[MediaStat] = []
    for key, item in list(media.items())[:MAX_ITEMS_PER_FIELD]:
        if type(item) is not dict:
            continue
        mid = read_id(item.get("mid")) or read_id(key)
        kind = read_kind(item.get("type")) or "unknown"
        codec = read_token(object_of(item.get("codecs")).get("codec"))
        inbound = object_of(object_of(item.get("stats")).get("in"))
        outbound = object_of(object_of(item.get("stats")).get("out"))
        rtcp = object_of(item.get("rtcp"))
        mindex = read_int(item.get("mindex"))
        main = {"in": inbound, "out": outbound, "rtcp": object_of(rtcp.get("main"))}
        stats.append(_from_poll(mid, mindex, kind, 0, codec, main))
        for layer in (1, 2):
            simulcast = inbound.get(f"video-simulcast-{layer}")
            if type(simulcast) is dict:
                sections = {"in": simulcast, "out": {}, "rtcp": object_of(rtcp.get(f"sim{layer}"))}
                stats.append(_from_poll(mid, mindex, kind, layer, codec, sections))
    return tuple(stats)
