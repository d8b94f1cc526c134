"""Admin API replies turned into typed records that state applies like events.

The poller sends requests; these functions read the replies (janus-protocol.md §3.3-3.6, §4.3)
into records, and ``poll_event`` wraps a record in the same envelope events use, so polls reach
state through the same door (``State.apply``). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.decode.events import parse_server_info
from monitor.decode.fields import object_of, read_bool, read_id, read_int, read_name, read_text
from monitor.decode.media import stats_from_handle_info
from monitor.decode.records import Body, Event, MediaStat, ServerInfo
from monitor.decode.videoroom import SubscriberStream, subscriber_streams

POLL_TYPE = 0  # the envelope type of poll records: no Janus event type uses 0


class ReplyError(ValueError):
    """An Admin API reply that does not have the shape Janus 1.x gives it."""


@dataclass(slots=True)
class PolledInfo(Body):
    info: ServerInfo


@dataclass(slots=True)
class PolledSessions(Body):
    """list_sessions: what Janus has now. Anything not confirmed since ``asked_at`` and not
    listed is gone."""

    session_ids: frozenset[int]
    asked_at: float


@dataclass(slots=True)
class PolledHandles(Body):
    """list_handles of one session; ``handle_ids`` None: the session no longer exists (458)."""

    session_id: int
    handle_ids: frozenset[int] | None
    asked_at: float


@dataclass(slots=True)
class PolledHandle(Body):
    """handle_info (plugin_only or full); ``exists`` False: the handle is gone (458/459)."""

    session_id: int
    handle_id: int
    exists: bool
    asked_at: float
    plugin: str | None = None
    opaque_id: str | None = None
    role: str | None = None  # publisher | subscriber | None (not joined)
    room: str | None = None
    publisher_id: str | None = None
    display: str | None = None
    publishing: bool = False
    bitrate_limit: int | None = None
    feeds: tuple[SubscriberStream, ...] = ()
    media: tuple[MediaStat, ...] | None = None  # only from a full handle_info with a PeerConnection
    local_candidates: tuple[str, ...] = ()  # webrtc.ice of a full handle_info, as Janus lists
    remote_candidates: tuple[str, ...] = ()


@dataclass(slots=True)
class PolledRoom:
    room: str
    description: str | None
    max_publishers: int | None
    bitrate: int | None
    recording: bool | None
    is_private: bool | None
    participants: int | None


@dataclass(slots=True)
class PolledRooms(Body):
    """VideoRoom `list` (without admin_key private rooms are not listed)."""

    rooms: tuple[PolledRoom, ...]
    asked_at: float
    string_ids: bool | None = None  # room ids came as strings (True) or integers (False)


@dataclass(slots=True)
class PolledParticipant:
    publisher_id: str
    display: str | None
    publishing: bool


@dataclass(slots=True)
class PolledParticipants(Body):
    """VideoRoom `listparticipants`; ``exists`` False: no such room (426)."""

    room: str
    exists: bool
    participants: tuple[PolledParticipant, ...]
    asked_at: float


def poll_event(server: str, body: Body) -> Event:
    return Event(server, POLL_TYPE, 0, 0, None, None, None, body)


# --- readers ------------------------------------------------------------------------------


_id = read_id
_int = read_int
_str = read_text
_bool = read_bool


def read_info(reply: dict[str, Any]) -> PolledInfo:
    if reply.get("janus") != "server_info":
        raise ReplyError("info reply is not server_info")
    return PolledInfo(parse_server_info(reply))


def read_rooms(response: dict[str, Any], asked_at: float) -> PolledRooms:
    listed = response.get("list")
    if type(listed) is not list:
        raise ReplyError("videoroom list reply has no 'list' array")
    rooms = []
    string_ids: bool | None = None
    for item in listed:
        raw = item.get("room") if type(item) is dict else None
        string_ids = type(raw) is str if raw is not None else string_ids
        room = _id(raw)
        if room is None:
            if raw is None:
                raise ReplyError("videoroom list entry without a room id")
            continue  # an id this daemon does not track (over 128 characters): the rest count
        rooms.append(
            PolledRoom(
                room,
                _str(item.get("description")),
                _int(item.get("max_publishers")),
                _int(item.get("bitrate")),
                _bool(item.get("record")),
                _bool(item.get("is_private")),
                _int(item.get("num_participants")),
            )
        )
    return PolledRooms(tuple(rooms), asked_at, string_ids)


def read_participants(room: str, response: dict[str, Any], asked_at: float) -> PolledParticipants:
    listed = response.get("participants")
    if type(listed) is not list:
        raise ReplyError("videoroom listparticipants reply has no 'participants' array")
    participants = []
    for item in listed:
        raw = item.get("id") if type(item) is dict else None
        publisher = _id(raw)
        if publisher is None:
            if raw is None:
                raise ReplyError("videoroom participant without an id")
            continue  # an id this daemon does not track (over 128 characters)
        participants.append(
            PolledParticipant(publisher, _str(item.get("display")), item.get("publisher") is True)
        )
    return PolledParticipants(room, True, tuple(participants), asked_at)


def _lines(value: Any) -> tuple[str, ...]:
    """Candidate lines of handle_info (bounded like everything decoded)."""
    if type(value) is not list:
        return ()
    return tuple(v for v in value[:MAX_CANDIDATE_LINES] if type(v) is str and len(v) <= 1024)


MAX_CANDIDATE_LINES = 64


def read_handle(
    session_id: int, handle_id: int, info: dict[str, Any], asked_at: float
) -> PolledHandle:
    """A handle_info ``info`` object (plugin_only or full)."""
    specific = object_of(info.get("plugin_specific"))
    kind = _str(specific.get("type"))
    polled = PolledHandle(
        session_id,
        handle_id,
        exists=True,
        asked_at=asked_at,
        plugin=read_name(info.get("plugin")),
        opaque_id=_str(info.get("opaque_id")),
        role=kind if kind in ("publisher", "subscriber") else None,
        room=_id(specific.get("room")),
        media=stats_from_handle_info(info.get("webrtc")) if "webrtc" in info else None,
    )
    ice = object_of(object_of(info.get("webrtc")).get("ice"))
    polled.local_candidates = _lines(ice.get("local-candidates"))
    polled.remote_candidates = _lines(ice.get("remote-candidates"))
    if polled.role == "publisher":
        polled.publisher_id = _id(specific.get("id"))
        polled.display = _str(specific.get("display"))
        polled.bitrate_limit = _int(specific.get("bitrate"))
        streams = specific.get("streams")
        polled.publishing = type(streams) is list and len(streams) > 0
    elif polled.role == "subscriber":
        polled.feeds = subscriber_streams(specific.get("streams"))
    return polled
