"""VideoRoom events as event handlers get them (janus-protocol.md §2): records and decoders.

Room and participant ids are kept as strings so that string_ids servers and numeric ones
share one code path (and one label format).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.decode.fields import (
    MAX_ID_CHARS,
    MAX_ITEMS_PER_FIELD,
    MAX_PUBLISHER_STREAMS,
    DecodeError,
    DecodeNotes,
    read_id,
    read_int,
    read_kind,
    read_text,
    read_token,
)
from monitor.decode.records import VIDEOROOM, Body, PluginEvent

_str = read_text
_int = read_int
_id = read_id


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


VideoRoomDecoder = Callable[[dict[str, Any], str, DecodeNotes], Body]


def _publisher_streams(value: Any) -> tuple[PublisherStream, ...]:
    if type(value) is not list:
        return ()
    return tuple(
        PublisherStream(
            _id(s.get("mid")),
            read_kind(s.get("type")),
            read_token(s.get("codec")),
            bool(s.get("simulcast")),
            bool(s.get("disabled")),
        )
        for s in value[:MAX_PUBLISHER_STREAMS]
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
        mid, kind = _id(s.get("mid")), read_kind(s.get("type"))
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
