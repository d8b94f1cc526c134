"""How each decoded event changes state: one applier per body type, same signature."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.events import (
    VIDEOROOM,
    Body,
    ConnectionEvent,
    CoreEvent,
    Event,
    HandleEvent,
    MediaStatsEvent,
    PublisherConfigured,
    PublisherGone,
    PublisherJoined,
    PublisherPublished,
    RoomCreated,
    RoomDestroyed,
    RoomEdited,
    SessionEvent,
    SubscriberStream,
    SubscriberStreams,
    SubscriberUnsubscribed,
    SubscriberUp,
)
from monitor.state.model import (
    MAX_STREAMS_PER_HANDLE,
    PUBLISHER,
    SUBSCRIBER,
    Handle,
    Publisher,
    Server,
    Subscriber,
)

if TYPE_CHECKING:
    from monitor.state.store import Applier, State


def _apply_session(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, SessionEvent)
    if event.session_id is None:
        return
    if body.name == "created":
        server.gone_sessions.pop(event.session_id, None)  # a client may reuse an id
        session = state._session(server, event.session_id, now)
        if session is not None:
            session.transport = body.transport
    elif body.name in ("destroyed", "timeout"):
        state._remove_session(server, event.session_id, now)
    else:
        state._touch(server, event, now)


def _apply_handle(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, HandleEvent)
    if event.session_id is None or event.handle_id is None:
        return
    if body.name == "detached":
        session = server.sessions.get(event.session_id)
        if session is not None:
            state._remove_handle(server, session, event.handle_id, now)
        else:
            state.gone_handle(server, (event.session_id, event.handle_id), now)
        return
    if body.name == "attached":
        server.gone_handles.pop((event.session_id, event.handle_id), None)
    handle = state._touch(server, event, now)
    if handle is not None and body.plugin:
        handle.plugin = body.plugin


def _apply_connection(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, ConnectionEvent)
    handle = state._touch(server, event, now)
    if handle is None:
        return
    handle.pc_up = body.connection == "webrtcup"
    if not handle.pc_up:
        handle.media.clear()  # a new PeerConnection on this handle restarts its counters
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        subscriber.pc_up = handle.pc_up


def _apply_media_stats(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, MediaStatsEvent)
    handle = state._touch(server, event, now)
    if handle is None:
        return
    media = handle.media
    for stat in body.stats:
        key = (stat.mid, stat.layer)
        if key in media or len(media) < MAX_STREAMS_PER_HANDLE:
            media[key] = stat
    handle.media_seen, handle.media_source = now, "event"


def _apply_core(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, CoreEvent)
    if body.status == "started":
        state._reset_server(server)
        server.running = True
        if body.info is not None:
            server.info = body.info
    elif body.status == "shutdown":
        state._reset_server(server)
        server.running = False


def _plugin_handle(state: State, server: Server, event: Event, now: float) -> Handle | None:
    handle = state._touch(server, event, now)
    if handle is not None and handle.plugin is None:
        handle.plugin = VIDEOROOM
    return handle


def _apply_room_created(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, (RoomCreated, RoomEdited))
    state._touch(server, event, now)
    state._room(server, body.room, now)


def _apply_room_destroyed(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, RoomDestroyed)
    state._touch(server, event, now)
    _drop_room(state, server, body.room)


def _drop_room(state: State, server: Server, room_id: str) -> None:
    server.rooms.pop(room_id, None)
    for publisher in server.publishers_in(room_id):
        state._remove_publisher(server, publisher)
    for subscriber in server.subscribers_in(room_id):
        server.pop_subscriber(subscriber.handle)
    for handle in server.handles():
        if handle.room == room_id:
            handle.room = None


def _publisher(
    state: State, server: Server, event: Event, room_id: str, publisher_id: str, now: float
) -> Publisher | None:
    """The publisher an event with a publisher handle context speaks of; created if missed.
    None when that handle is already gone: a late event must not bring a publisher back."""
    if state._is_gone(server, event):
        return None
    return _link_publisher(
        state, server, _plugin_handle(state, server, event, now), room_id, publisher_id, now
    )


def _members_changed(server: Server, room_id: str, now: float) -> None:
    room = server.rooms.get(room_id)
    if room is not None:
        room.members_changed, room.changed_at = True, now


def _link_publisher(
    state: State,
    server: Server,
    handle: Handle | None,
    room_id: str,
    publisher_id: str,
    now: float,
) -> Publisher | None:
    """The publisher, linked to its handle; None when a limit keeps its room or it out."""
    if state._room(server, room_id, now) is None:
        return None
    publisher = server.publishers.get((room_id, publisher_id))
    if publisher is None:
        publisher = state._new_publisher(server, room_id, publisher_id, now)
        if publisher is None:
            return None
    publisher.seen = now
    if handle is not None:
        key = (handle.session_id, handle.handle_id)
        if publisher.handle != key:
            publisher.handle = key
            publisher.opaque_id = handle.opaque_id
        if handle.role == SUBSCRIBER:
            server.pop_subscriber(key)
        handle.role, handle.room, handle.publisher_id = PUBLISHER, room_id, publisher_id
    return publisher


def _apply_joined(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherJoined)
    previous = server.publishers.get((body.room, body.publisher))
    if (
        previous is not None
        and previous.handle is not None
        and previous.handle != (event.session_id, event.handle_id)
    ):
        state._remove_publisher(server, previous)  # the id was reused by a new handle
    publisher = _publisher(state, server, event, body.room, body.publisher, now)
    if publisher is None:
        return
    _members_changed(server, body.room, now)
    publisher.display = body.display
    publisher.joined_at = now
    publisher.publishing = False
    publisher.configured_since_join = False


def _apply_configured(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherConfigured)
    publisher = _publisher(state, server, event, body.room, body.publisher, now)
    if publisher is None:
        return
    publisher.bitrate_limit = body.bitrate
    if not publisher.configured_since_join and body.bitrate is not None:
        # The first configure after a join carries the bitrate copied from the room, unless the
        # client asked for another one: a hint until a poll reads the room's real cap.
        publisher.configured_since_join = True
        room = server.rooms[body.room]  # _publisher made sure it is tracked
        if room.cap_source != "poll":
            room.bitrate_cap, room.cap_source = body.bitrate, "event"


def _apply_published(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherPublished)
    publisher = _publisher(state, server, event, body.room, body.publisher, now)
    if publisher is None:
        return
    publisher.publishing = True
    publisher.streams = body.streams
    if body.display is not None:
        publisher.display = body.display


def _apply_publisher_gone(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherGone)
    # No session or handle here: the (room, id) map says whose handle it was.
    if body.publisher is None:
        return
    publisher = server.publishers.get((body.room, body.publisher))
    _members_changed(server, body.room, now)
    if body.left_room:
        state.gone_publisher(server, (body.room, body.publisher), now)
    if publisher is None:
        return
    if not body.left_room:
        publisher.publishing = False
        publisher.seen = now
        state._drop_feed(server, body.room, body.publisher)
        return
    state._remove_publisher(server, publisher, gone_at=now)
    handle = server.handle(publisher.handle) if publisher.handle else None
    if handle is not None:
        handle.room = None  # a VideoRoom handle can never rejoin after leaving (425)


def _apply_subscriber_streams(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, SubscriberStreams)
    if state._is_gone(server, event):
        return
    handle = _plugin_handle(state, server, event, now)
    if handle is None:
        return
    if body.update and handle.role == PUBLISHER:
        # 1.1.2 sends some subscriber updates with the context of the publisher that caused
        # them; the feed changes they describe also arrive as unpublished/leaving events.
        return
    _link_subscriber(state, server, handle, body.room, body.streams, now)


def _link_subscriber(
    state: State,
    server: Server,
    handle: Handle,
    room_id: str,
    streams: tuple[SubscriberStream, ...],
    now: float,
) -> Subscriber | None:
    """The subscriber the handle is; None when limits.max_tracked_rooms keeps its room out."""
    room = state._room(server, room_id, now)
    if room is None:
        return None
    if handle.role == PUBLISHER:
        state._forget_role(server, handle)
    key = (handle.session_id, handle.handle_id)
    subscriber = server.subscribers.get(key)
    if subscriber is None or subscriber.room != room_id:
        subscriber = Subscriber(key, room_id, now)
        server.add_subscriber(subscriber)
        room.members_changed, room.changed_at = True, now
    subscriber.seen = now
    subscriber.feeds = {(s.mid, s.feed) for s in streams if s.active and s.feed is not None}
    handle.role, handle.room, handle.publisher_id = SUBSCRIBER, room_id, None
    return subscriber


def _apply_subscriber_up(state: State, server: Server, event: Event, now: float) -> None:
    handle = _plugin_handle(state, server, event, now)
    if handle is None:
        return
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        subscriber.pc_up = True
        subscriber.seen = now


def _apply_unsubscribed(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, SubscriberUnsubscribed)
    handle = _plugin_handle(state, server, event, now)
    if handle is None or body.feed is None:
        return
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        # The PeerConnection went down: Janus drops every relayed stream of that feed.
        subscriber.feeds = {(m, f) for m, f in subscriber.feeds if f != body.feed}
        subscriber.pc_up = False


EVENT_APPLIERS: dict[type[Body], Applier] = {
    SessionEvent: _apply_session,
    HandleEvent: _apply_handle,
    ConnectionEvent: _apply_connection,
    MediaStatsEvent: _apply_media_stats,
    CoreEvent: _apply_core,
    RoomCreated: _apply_room_created,
    RoomEdited: _apply_room_created,
    RoomDestroyed: _apply_room_destroyed,
    PublisherJoined: _apply_joined,
    PublisherConfigured: _apply_configured,
    PublisherPublished: _apply_published,
    PublisherGone: _apply_publisher_gone,
    SubscriberStreams: _apply_subscriber_streams,
    SubscriberUp: _apply_subscriber_up,
    SubscriberUnsubscribed: _apply_unsubscribed,
}
