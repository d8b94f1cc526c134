"""The operations appliers change state with: public, typed, and the only removal funnel.

Appliers (``from_events``, ``from_polls``) and the sweep change records only through these.
Every way a handle, publisher, room or whole server goes away ends here, so the removal hooks
(``hooks.RemovalHooks``) see each removal once, whatever path caused it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from monitor.decode.records import VIDEOROOM, Event
from monitor.decode.videoroom import SubscriberStream
from monitor.state.hooks import HANDLE_DETACHED, RemovalHooks
from monitor.state.model import (
    PUBLISHER,
    SUBSCRIBER,
    Handle,
    HandleKey,
    Publisher,
    PublisherKey,
    Room,
    Server,
    Session,
    Subscriber,
    remember_gone,
)
from monitor.telemetry import Telemetry

if TYPE_CHECKING:
    from monitor.state.store import State


class Ops:
    def __init__(self, state: State, hooks: RemovalHooks, telemetry: Telemetry) -> None:
        self.state = state
        self.hooks = hooks
        self.telemetry = telemetry
        # What was refused at a limit, remembered (bounded) so each is counted once.
        self._refused: OrderedDict[tuple[str, str, object], None] = OrderedDict()

    # --- counting --------------------------------------------------------------------------

    def count_drop(self, kind: str, reason: str, n: int = 1) -> None:
        self.telemetry.dropped(kind, reason, n)

    def refuse(self, kind: str, server: Server, key: object) -> None:
        """Count what a limit kept out, once per object while it keeps being named."""
        refused = (kind, server.name, key)
        if refused not in self._refused:
            self._refused[refused] = None
            if len(self._refused) > self.state.limits.max_tracked_handles:
                self._refused.popitem(last=False)
            self.count_drop(kind, "limit")

    # --- sessions and handles --------------------------------------------------------------

    def session(self, server: Server, session_id: int, now: float) -> Session | None:
        """The session, created if new; None when it was destroyed (a late event)."""
        session = server.sessions.get(session_id)
        if session is None:
            if session_id in server.gone_sessions:
                return None
            total = sum(len(s.sessions) for s in self.state.servers.values())
            if total >= self.state.limits.max_tracked_sessions:
                self.refuse("session", server, session_id)
                return None
            session = server.sessions[session_id] = Session(session_id, now, since=now)
        else:
            session.seen = now
        return session

    def touch(self, server: Server, event: Event, now: float) -> Handle | None:
        """Confirm the session and handle an event names, creating what events missed."""
        if event.session_id is None:
            return None
        return self.confirm(server, event.session_id, event.handle_id, event.opaque_id, now)

    def confirm(
        self,
        server: Server,
        session_id: int,
        handle_id: int | None,
        opaque_id: str | None,
        now: float,
    ) -> Handle | None:
        """The handle (and its session) confirmed alive at ``now``; created if new, unless it
        was detached or limits.max_tracked_handles keeps it out."""
        session = self.session(server, session_id, now)
        if session is None or handle_id is None:
            return None
        handle = session.handles.get(handle_id)
        if handle is not None:
            handle.seen = now
            return handle
        key = (session_id, handle_id)
        if key in server.gone_handles:
            return None
        if self.state.handle_count >= self.state.limits.max_tracked_handles:
            self.refuse("handle", server, key)
            return None
        handle = Handle(session_id, handle_id, None, opaque_id, now, since=now)
        session.handles[handle_id] = handle
        server.handle_count += 1
        server.count_plugin(handle)
        self.state.handle_count += 1
        return handle

    def plugin_handle(self, server: Server, event: Event, now: float) -> Handle | None:
        """The handle a VideoRoom event comes from (so its plugin is VideoRoom)."""
        handle = self.touch(server, event, now)
        if handle is not None and handle.plugin is None:
            server.set_plugin(handle, VIDEOROOM)
        return handle

    def is_gone(self, server: Server, event: Event) -> bool:
        """Whether an event names a session or handle already destroyed or detached."""
        if event.session_id is None:
            return False
        if event.session_id in server.gone_sessions:
            return True
        return event.handle_id is not None and (
            (event.session_id, event.handle_id) in server.gone_handles
        )

    def gone_handle(self, server: Server, key: HandleKey, at: float) -> None:
        remember_gone(server.gone_handles, key, at, self.state.limits.max_tracked_handles)

    def gone_session(self, server: Server, session_id: int, at: float) -> None:
        remember_gone(server.gone_sessions, session_id, at, self.state.limits.max_tracked_handles)

    def gone_publisher(self, server: Server, key: PublisherKey, at: float) -> None:
        remember_gone(server.gone_publishers, key, at, self.state.limits.max_tracked_publishers)

    def remove_handle(
        self,
        server: Server,
        session: Session,
        handle_id: int,
        gone_at: float | None,
        reason: str = HANDLE_DETACHED,
    ) -> bool:
        """Forget a handle; with ``gone_at``, late events for it will not bring it back.

        Returns whether a publisher went with it.
        """
        handle = session.handles.pop(handle_id, None)
        if gone_at is not None:
            self.gone_handle(server, (session.session_id, handle_id), gone_at)
        if handle is None:
            return False
        server.handle_count -= 1
        server.forget_plugin(handle)
        self.state.handle_count -= 1
        had_publisher = self.forget_role(server, handle, gone_at)
        self.hooks.handle_gone(server, handle, reason)
        return had_publisher

    def remove_session(
        self, server: Server, session_id: int, now: float, reason: str = HANDLE_DETACHED
    ) -> None:
        """A session destroyed (or timed out, or no longer listed): it and its handles go."""
        self.gone_session(server, session_id, now)
        session = server.sessions.pop(session_id, None)
        if session is None:
            return
        for handle_id in list(session.handles):
            self.remove_handle(server, session, handle_id, now, reason)

    def forget_role(self, server: Server, handle: Handle, gone_at: float | None = None) -> bool:
        """Undo what the handle was in a room: its subscriber, or its publisher (if it still
        owns it). Returns whether a publisher went."""
        key = (handle.session_id, handle.handle_id)
        server.pop_subscriber(key)
        if handle.publisher_id is not None and handle.room is not None:
            publisher = server.publishers.get((handle.room, handle.publisher_id))
            if publisher is not None and publisher.handle == key:
                self.remove_publisher(server, publisher, gone_at)
                return True
        return False

    def reset_server(self, server: Server) -> None:
        """Janus (re)started or shut down: nothing of the old process survives."""
        self.state.handle_count -= server.handle_count
        server.handle_count = 0
        server.plugin_handles.clear()
        server.sessions.clear()
        server.rooms.clear()
        server.publishers.clear()
        server.subscribers.clear()
        server.room_publishers.clear()
        server.room_subscribers.clear()
        server.gone_sessions.clear()
        server.gone_handles.clear()
        self.hooks.server_gone(server)

    # --- rooms -----------------------------------------------------------------------------

    def room(self, server: Server, room_id: str, now: float) -> Room | None:
        """The room, created if new; None when limits.max_tracked_rooms keeps it out."""
        room = server.rooms.get(room_id)
        if room is None:
            total = sum(len(s.rooms) for s in self.state.servers.values())
            if total >= self.state.limits.max_tracked_rooms:
                self.refuse("room", server, room_id)
                return None
            room = server.rooms[room_id] = Room(room_id, now)
        else:
            room.seen = now
        return room

    def members_changed(self, server: Server, room_id: str, now: float) -> None:
        """Events changed who is in the room: the poller re-lists it."""
        room = server.rooms.get(room_id)
        if room is not None:
            room.members_changed, room.changed_at = True, now

    def drop_room(self, server: Server, room_id: str) -> None:
        """The room is gone (destroyed, or Janus no longer has it), and everyone in it."""
        had_room = server.rooms.pop(room_id, None) is not None
        # Only its members' handles: every other way out of a room clears handle.room, and a
        # walk of every handle was 2 ms at 20 k handles for each room destroyed.
        members: list[HandleKey] = []
        for publisher in server.publishers_in(room_id):
            if publisher.handle is not None:
                members.append(publisher.handle)
            self.remove_publisher(server, publisher)
        for subscriber in server.subscribers_in(room_id):
            members.append(subscriber.handle)
            server.pop_subscriber(subscriber.handle)
        for key in members:
            handle = server.handle(key)
            if handle is not None and handle.room == room_id:
                handle.room = None
        if had_room:
            self.hooks.room_gone(server, room_id)

    def remove_stale_room(self, server: Server, room_id: str) -> None:
        """A room no event or poll confirmed within stale_after, with nobody in it."""
        del server.rooms[room_id]
        self.hooks.room_gone(server, room_id)

    # --- publishers and subscribers --------------------------------------------------------

    def remove_publisher(
        self, server: Server, publisher: Publisher, gone_at: float | None = None
    ) -> None:
        """Forget a publisher; with ``gone_at``, a poll answer asked before then will not
        bring it back."""
        key = (publisher.room, publisher.publisher_id)
        server.pop_publisher(key)
        if gone_at is not None:
            self.gone_publisher(server, key, gone_at)
        self.drop_feed(server, publisher.room, publisher.publisher_id)
        self.hooks.publisher_gone(server, publisher)

    def drop_feed(self, server: Server, room: str, feed: str) -> None:
        """Subscribers in the room no longer receive this publisher's streams."""
        for subscriber in server.subscribers_in(room):
            if feed in subscriber.feed_ids:
                subscriber.feeds = {(m, f) for m, f in subscriber.feeds if f != feed}

    def link_publisher(
        self,
        server: Server,
        handle: Handle | None,
        room_id: str,
        publisher_id: str,
        now: float,
    ) -> Publisher | None:
        """The publisher, linked to its handle; None when a limit keeps its room or it out."""
        if self.room(server, room_id, now) is None:
            return None
        publisher = server.publishers.get((room_id, publisher_id))
        if publisher is None:
            if self.state.publisher_count() >= self.state.limits.max_tracked_publishers:
                self.refuse("publisher", server, (room_id, publisher_id))
                return None
            publisher = Publisher(room_id, publisher_id, None, now, joined_at=now)
            server.add_publisher(publisher)
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

    def link_subscriber(
        self,
        server: Server,
        handle: Handle,
        room_id: str,
        streams: tuple[SubscriberStream, ...],
        now: float,
    ) -> Subscriber | None:
        """The subscriber the handle is; None when limits.max_tracked_rooms keeps its room
        out."""
        room = self.room(server, room_id, now)
        if room is None:
            return None
        if handle.role == PUBLISHER:
            self.forget_role(server, handle)
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
