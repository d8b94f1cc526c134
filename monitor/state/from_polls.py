"""How each Admin API record changes state: what Janus lists is the truth, as of when asked."""

from __future__ import annotations

from monitor.decode.polls import (
    PolledHandle,
    PolledHandles,
    PolledInfo,
    PolledParticipants,
    PolledRooms,
    PolledSessions,
)
from monitor.decode.records import Event
from monitor.state.hooks import HANDLE_RECONCILE
from monitor.state.model import PUBLISHER, SUBSCRIBER, Server
from monitor.state.ops import Ops


def apply_polled_info(ops: Ops, server: Server, event: Event, body: PolledInfo, now: float) -> None:
    server.info = body.info
    server.running = True


def apply_polled_sessions(
    ops: Ops, server: Server, event: Event, body: PolledSessions, now: float
) -> None:
    server.listed_at = now
    for session_id in body.session_ids:
        known = server.sessions.get(session_id)
        if known is not None:
            known.seen = now  # Janus lists it: confirmed alive
        else:
            gone_at = server.gone_sessions.get(session_id)
            if gone_at is not None and gone_at >= body.asked_at:
                continue  # destroyed after the request went out: the list is older
            server.gone_sessions.pop(session_id, None)
            ops.session(server, session_id, now)
    for session_id, session in list(server.sessions.items()):
        # Only what no event confirmed after the request went out can be declared gone.
        if session_id not in body.session_ids and session.seen < body.asked_at:
            ops.remove_session(server, session_id, now, HANDLE_RECONCILE)
            ops.count_drop("session", "reconcile")


def apply_polled_handles(
    ops: Ops, server: Server, event: Event, body: PolledHandles, now: float
) -> None:
    session = server.sessions.get(body.session_id)
    if body.handle_ids is None:
        if session is not None and session.seen < body.asked_at:
            ops.remove_session(server, body.session_id, now, HANDLE_RECONCILE)
            ops.count_drop("session", "reconcile")
        return
    for handle_id in body.handle_ids:
        key = (body.session_id, handle_id)
        gone_at = server.gone_handles.get(key)
        if gone_at is not None:
            if gone_at >= body.asked_at:
                continue  # detached after the request went out: the list is older
            del server.gone_handles[key]
        ops.confirm(server, body.session_id, handle_id, None, now)
    session = server.sessions.get(body.session_id)
    if session is None:
        return
    session.listed_at = body.asked_at
    stale = [
        h.handle_id
        for h in session.handles.values()
        if h.handle_id not in body.handle_ids and h.seen < body.asked_at
    ]
    for handle_id in stale:
        ops.remove_handle(server, session, handle_id, now, HANDLE_RECONCILE)
    ops.count_drop("handle", "reconcile", len(stale))


def apply_polled_handle(
    ops: Ops, server: Server, event: Event, body: PolledHandle, now: float
) -> None:
    session = server.sessions.get(body.session_id)
    if not body.exists:
        handle = session.handles.get(body.handle_id) if session else None
        if session is not None and handle is not None and handle.seen < body.asked_at:
            ops.remove_handle(server, session, body.handle_id, now, HANDLE_RECONCILE)
            ops.count_drop("handle", "reconcile")
        return
    handle = ops.confirm(server, body.session_id, body.handle_id, body.opaque_id, now)
    if handle is None:
        return
    handle.explained_at = now
    if body.plugin:
        server.set_plugin(handle, body.plugin)
    if body.opaque_id:
        handle.opaque_id = body.opaque_id
    if body.media is not None:
        handle.media = {(s.mid, s.layer): s.kind for s in body.media}
        handle.media_seen, handle.media_source = now, "poll"
    if body.role == PUBLISHER and body.room is not None and body.publisher_id is not None:
        if handle.publisher_id != body.publisher_id or handle.room != body.room:
            ops.forget_role(server, handle)
        publisher = ops.link_publisher(server, handle, body.room, body.publisher_id, now)
        if publisher is None:
            return
        publisher.publishing = body.publishing
        if body.display is not None:
            publisher.display = body.display
        if body.bitrate_limit is not None:
            publisher.bitrate_limit = body.bitrate_limit
    elif body.role == SUBSCRIBER and body.room is not None:
        ops.link_subscriber(server, handle, body.room, body.feeds, now)
    elif body.role is not None:
        # Joined once, now in no room (left or kicked): the handle keeps its role.
        ops.forget_role(server, handle)
        handle.role, handle.room = body.role, None


def apply_polled_rooms(
    ops: Ops, server: Server, event: Event, body: PolledRooms, now: float
) -> None:
    listed = set()
    for polled in body.rooms:
        listed.add(polled.room)
        room = ops.room(server, polled.room, now)
        if room is None:
            continue
        room.bitrate_cap, room.cap_source = polled.bitrate, "poll"
        room.max_publishers = polled.max_publishers
        room.recording = polled.recording
        room.description = polled.description
        room.is_private = polled.is_private
        room.unlisted = False
        members = len(server.room_publishers.get(polled.room, ()))
        if polled.participants is not None and polled.participants != members:
            room.members_changed = True
    if body.string_ids is not None:
        server.string_ids = body.string_ids
    for room_id, room in server.rooms.items():
        if room_id not in listed and room.seen < body.asked_at and room.is_private is not True:
            room.unlisted = True  # private (list needs admin_key) or gone: listparticipants tells


def apply_polled_participants(
    ops: Ops, server: Server, event: Event, body: PolledParticipants, now: float
) -> None:
    room = server.rooms.get(body.room)
    if not body.exists:
        if room is not None and room.seen < body.asked_at:
            ops.drop_room(server, body.room)
            ops.count_drop("room", "reconcile")
        return
    room = ops.room(server, body.room, now)
    if room is None:
        return
    if room.unlisted:
        room.is_private = True  # it exists, but `list` does not show it
    room.members_at, room.unlisted = now, False
    room.members_changed = room.changed_at >= body.asked_at  # events since the question
    listed = {p.publisher_id: p for p in body.participants}
    for publisher in server.publishers_in(body.room):
        if publisher.publisher_id not in listed and publisher.seen < body.asked_at:
            ops.remove_publisher(server, publisher)
            handle = server.handle(publisher.handle) if publisher.handle else None
            if handle is not None:
                handle.room = None
            ops.count_drop("publisher", "reconcile")
    for participant in body.participants:
        gone_at = server.gone_publishers.get((body.room, participant.publisher_id))
        if gone_at is not None and gone_at >= body.asked_at:
            continue  # left or was kicked after the question: the answer is older
        linked = ops.link_publisher(server, None, body.room, participant.publisher_id, now)
        if linked is None:
            continue
        linked.publishing = participant.publishing
        if participant.display is not None:
            linked.display = participant.display
