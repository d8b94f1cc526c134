"""How each decoded event changes membership state: one applier per body type."""

from __future__ import annotations

from monitor.decode.records import (
    ConnectionEvent,
    CoreEvent,
    Event,
    HandleEvent,
    MediaStatsEvent,
    SessionEvent,
)
from monitor.decode.videoroom import (
    PublisherConfigured,
    PublisherGone,
    PublisherJoined,
    PublisherPublished,
    RoomCreated,
    RoomDestroyed,
    RoomEdited,
    SubscriberStreams,
    SubscriberUnsubscribed,
    SubscriberUp,
)
from monitor.state.model import MAX_STREAMS_PER_HANDLE, SUBSCRIBER, Publisher, Server
from monitor.state.ops import Ops


def apply_session(ops: Ops, server: Server, event: Event, body: SessionEvent, now: float) -> None:
    if event.session_id is None:
        return
    if body.name == "created":
        server.gone_sessions.pop(event.session_id, None)  # a client may reuse an id
        session = ops.session(server, event.session_id, now)
        if session is not None:
            session.transport = body.transport
    elif body.name in ("destroyed", "timeout"):
        ops.remove_session(server, event.session_id, now)
    else:
        ops.touch(server, event, now)


def apply_handle(ops: Ops, server: Server, event: Event, body: HandleEvent, now: float) -> None:
    if event.session_id is None or event.handle_id is None:
        return
    if body.name == "detached":
        session = server.sessions.get(event.session_id)
        if session is not None:
            ops.remove_handle(server, session, event.handle_id, now)
        else:
            ops.gone_handle(server, (event.session_id, event.handle_id), now)
        return
    if body.name == "attached":
        server.gone_handles.pop((event.session_id, event.handle_id), None)
    handle = ops.touch(server, event, now)
    if handle is not None and body.plugin:
        server.set_plugin(handle, body.plugin)


def apply_connection(
    ops: Ops, server: Server, event: Event, body: ConnectionEvent, now: float
) -> None:
    handle = ops.touch(server, event, now)
    if handle is None:
        return
    handle.pc_up = body.connection == "webrtcup"
    if not handle.pc_up:
        handle.media.clear()  # a new PeerConnection on this handle restarts its counters
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        subscriber.pc_up = handle.pc_up


def apply_media_stats(
    ops: Ops, server: Server, event: Event, body: MediaStatsEvent, now: float
) -> None:
    handle = ops.touch(server, event, now)
    if handle is None:
        return
    media = handle.media
    for stat in body.stats:
        key = stat.stream
        if key in media or len(media) < MAX_STREAMS_PER_HANDLE:
            media[key] = stat.kind
    handle.media_seen, handle.media_source = now, "event"


def apply_core(ops: Ops, server: Server, event: Event, body: CoreEvent, now: float) -> None:
    if body.status == "started":
        ops.reset_server(server)
        server.running = True
        if body.info is not None:
            server.info = body.info
    elif body.status == "shutdown":
        ops.reset_server(server)
        server.running = False


def apply_room_created(
    ops: Ops, server: Server, event: Event, body: RoomCreated | RoomEdited, now: float
) -> None:
    ops.touch(server, event, now)
    ops.room(server, body.room, now)


def apply_room_destroyed(
    ops: Ops, server: Server, event: Event, body: RoomDestroyed, now: float
) -> None:
    ops.touch(server, event, now)
    ops.drop_room(server, body.room)


def _publisher(
    ops: Ops, server: Server, event: Event, room_id: str, publisher_id: str, now: float
) -> Publisher | None:
    """The publisher an event with a publisher handle context speaks of; created if missed.
    None when that handle is already gone: a late event must not bring a publisher back."""
    if ops.is_gone(server, event):
        return None
    handle = ops.plugin_handle(server, event, now)
    return ops.link_publisher(server, handle, room_id, publisher_id, now)


def apply_joined(ops: Ops, server: Server, event: Event, body: PublisherJoined, now: float) -> None:
    previous = server.publishers.get((body.room, body.publisher))
    if (
        previous is not None
        and previous.handle is not None
        and previous.handle != (event.session_id, event.handle_id)
    ):
        ops.remove_publisher(server, previous)  # the id was reused by a new handle
        old = server.handle(previous.handle)
        if old is not None and old.room == body.room:
            old.room = None  # out of the room, as after leaving (drop_room relies on it)
    publisher = _publisher(ops, server, event, body.room, body.publisher, now)
    if publisher is None:
        return
    ops.members_changed(server, body.room, now)
    publisher.display = body.display
    publisher.joined_at = now
    publisher.publishing = False
    publisher.configured_since_join = False


def apply_configured(
    ops: Ops, server: Server, event: Event, body: PublisherConfigured, now: float
) -> None:
    publisher = _publisher(ops, server, event, body.room, body.publisher, now)
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


def apply_published(
    ops: Ops, server: Server, event: Event, body: PublisherPublished, now: float
) -> None:
    publisher = _publisher(ops, server, event, body.room, body.publisher, now)
    if publisher is None:
        return
    publisher.publishing = True
    publisher.streams = body.streams
    if body.display is not None:
        publisher.display = body.display


def apply_publisher_gone(
    ops: Ops, server: Server, event: Event, body: PublisherGone, now: float
) -> None:
    # No session or handle here: the (room, id) map says whose handle it was.
    if body.publisher is None:
        return
    publisher = server.publishers.get((body.room, body.publisher))
    ops.members_changed(server, body.room, now)
    if body.left_room:
        ops.gone_publisher(server, (body.room, body.publisher), now)
    if publisher is None:
        return
    if not body.left_room:
        publisher.publishing = False
        publisher.seen = now
        ops.drop_feed(server, body.room, body.publisher)
        return
    ops.remove_publisher(server, publisher, gone_at=now)
    handle = server.handle(publisher.handle) if publisher.handle else None
    if handle is not None:
        handle.room = None  # a VideoRoom handle can never rejoin after leaving (425)


def apply_subscriber_streams(
    ops: Ops, server: Server, event: Event, body: SubscriberStreams, now: float
) -> None:
    if ops.is_gone(server, event):
        return
    handle = ops.plugin_handle(server, event, now)
    if handle is None:
        return
    if body.update and handle.role != SUBSCRIBER:
        # 1.1.2 sends some subscriber updates with the context of the publisher that caused
        # them (the feed changes they describe also arrive as unpublished/leaving events): an
        # update makes no handle a subscriber; a `subscribing` or a poll does.
        return
    ops.link_subscriber(server, handle, body.room, body.streams, now)


def apply_subscriber_up(
    ops: Ops, server: Server, event: Event, body: SubscriberUp, now: float
) -> None:
    handle = ops.plugin_handle(server, event, now)
    if handle is None:
        return
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        subscriber.pc_up = True
        subscriber.seen = now


def apply_unsubscribed(
    ops: Ops, server: Server, event: Event, body: SubscriberUnsubscribed, now: float
) -> None:
    handle = ops.plugin_handle(server, event, now)
    if handle is None or body.feed is None:
        return
    subscriber = server.subscribers.get((handle.session_id, handle.handle_id))
    if subscriber is not None:
        # The PeerConnection went down: Janus drops every relayed stream of that feed.
        subscriber.feeds = {(m, f) for m, f in subscriber.feeds if f != body.feed}
        subscriber.pc_up = False
