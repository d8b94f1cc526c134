"""State: the records, the one door that changes them, and the sweep of stale ones."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from monitor.events import Body, Event
from monitor.state.model import (
    Handle,
    Limits,
    Publisher,
    Room,
    Server,
    Session,
    remember_gone,
)


class State:
    """All tracked state, and the only code that changes it."""

    def __init__(self, limits: Limits | None = None, targets: tuple[str, ...] = ()) -> None:
        self.limits = limits or Limits()
        self.servers: dict[str, Server] = {}
        self.handle_count = 0
        self.dropped: dict[tuple[str, str], int] = {}  # (kind, reason) -> count
        # What was refused at a limit, remembered (bounded) so each is counted once.
        self._refused: OrderedDict[tuple[str, str, object], None] = OrderedDict()
        self.configure(targets, self.limits)

    # --- configuration ---------------------------------------------------------------------

    def configure(self, targets: tuple[str, ...], limits: Limits) -> None:
        """Apply a (re)loaded config: which servers are targets, and the limits."""
        self.limits = limits
        names = set(targets)
        for server in self.servers.values():
            server.configured = server.name in names
        for name in targets:
            if name not in self.servers:
                self.servers[name] = Server(name, configured=True, seen=0.0)

    def admit(self, name: str, now: float) -> bool:
        """Track an emitter: an unknown one gets a server under its own name, up to a bound."""
        if name in self.servers:
            return True
        unknown = sum(1 for s in self.servers.values() if not s.configured)
        if unknown >= self.limits.max_unknown_emitters:
            return False
        self.servers[name] = Server(name, configured=False, seen=now)
        return True

    def server(self, name: str, now: float) -> Server:
        server = self.servers.get(name)
        if server is None:
            server = self.servers[name] = Server(name, configured=False, seen=now)
        return server

    # --- the door --------------------------------------------------------------------------

    def apply(self, event: Event, now: float) -> None:
        """Apply one event or poll record; an applier's failure is raised to the caller."""
        failed = self.apply_all((event,), now)
        if failed:
            raise failed[0][1]

    def apply_all(self, events: Iterable[Event], now: float) -> list[tuple[Event, Exception]]:
        """Apply events in order; one that fails is returned with its error, the rest go on."""
        failed: list[tuple[Event, Exception]] = []
        server: Server | None = None
        appliers = APPLIERS
        for event in events:
            if server is None or event.emitter != server.name:
                server = self.server(event.emitter, now)
                server.seen = now
            if event.timestamp > server.last_event_timestamp:
                server.last_event_timestamp = event.timestamp
            applier = appliers.get(type(event.body))
            try:
                if applier is not None:
                    applier(self, server, event, now)
                elif event.session_id is not None:
                    self._touch(server, event, now)
            except Exception as exc:  # a bug must not cost the other events
                failed.append((event, exc))
        return failed

    # --- sessions and handles --------------------------------------------------------------

    def _count_drop(self, kind: str, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[(kind, reason)] = self.dropped.get((kind, reason), 0) + n

    def _session(self, server: Server, session_id: int, now: float) -> Session | None:
        session = server.sessions.get(session_id)
        if session is None:
            if session_id in server.gone_sessions:
                return None
            session = server.sessions[session_id] = Session(session_id, now, since=now)
        else:
            session.seen = now
        return session

    def _touch(self, server: Server, event: Event, now: float) -> Handle | None:
        """Confirm the session and handle an event names, creating what events missed."""
        if event.session_id is None:
            return None
        return self._confirm(server, event.session_id, event.handle_id, event.opaque_id, now)

    def _confirm(
        self,
        server: Server,
        session_id: int,
        handle_id: int | None,
        opaque_id: str | None,
        now: float,
    ) -> Handle | None:
        session = self._session(server, session_id, now)
        if session is None or handle_id is None:
            return None
        handle = session.handles.get(handle_id)
        if handle is not None:
            handle.seen = now
            return handle
        key = (session_id, handle_id)
        if key in server.gone_handles:
            return None
        if self.handle_count >= self.limits.max_tracked_handles:
            self._refuse("handle", server, key)
            return None
        handle = Handle(session_id, handle_id, None, opaque_id, now, since=now)
        session.handles[handle_id] = handle
        server.handle_count += 1
        self.handle_count += 1
        return handle

    def _remove_handle(
        self, server: Server, session: Session, handle_id: int, gone_at: float | None
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
        self.handle_count -= 1
        return self._forget_role(server, handle, gone_at)

    def _forget_role(self, server: Server, handle: Handle, gone_at: float | None = None) -> bool:
        key = (handle.session_id, handle.handle_id)
        server.pop_subscriber(key)
        if handle.publisher_id is not None and handle.room is not None:
            publisher = server.publishers.get((handle.room, handle.publisher_id))
            if publisher is not None and publisher.handle == key:
                self._remove_publisher(server, publisher, gone_at)
                return True
        return False

    def _refuse(self, kind: str, server: Server, key: object) -> None:
        """Count what a limit kept out, once per object while it keeps being named."""
        refused = (kind, server.name, key)
        if refused not in self._refused:
            self._refused[refused] = None
            if len(self._refused) > self.limits.max_tracked_handles:
                self._refused.popitem(last=False)
            self._count_drop(kind, "limit")

    def gone_handle(self, server: Server, key: tuple[int, int], at: float) -> None:
        remember_gone(server.gone_handles, key, at, self.limits.max_tracked_handles)

    def gone_publisher(self, server: Server, key: tuple[str, str], at: float) -> None:
        remember_gone(server.gone_publishers, key, at, self.limits.max_tracked_publishers)

    def _remove_session(self, server: Server, session_id: int, now: float) -> None:
        remember_gone(server.gone_sessions, session_id, now, self.limits.max_tracked_handles)
        session = server.sessions.pop(session_id, None)
        if session is None:
            return
        for handle_id in list(session.handles):
            self._remove_handle(server, session, handle_id, now)

    def _reset_server(self, server: Server) -> None:
        """Janus (re)started or shut down: nothing of the old process survives."""
        self.handle_count -= server.handle_count
        server.handle_count = 0
        server.sessions.clear()
        server.rooms.clear()
        server.publishers.clear()
        server.subscribers.clear()
        server.room_publishers.clear()
        server.room_subscribers.clear()
        server.gone_sessions.clear()
        server.gone_handles.clear()

    # --- rooms, publishers, subscribers ----------------------------------------------------

    def _room(self, server: Server, room_id: str, now: float) -> Room | None:
        """The room, created if new; None when limits.max_tracked_rooms keeps it out."""
        room = server.rooms.get(room_id)
        if room is None:
            if sum(len(s.rooms) for s in self.servers.values()) >= self.limits.max_tracked_rooms:
                self._refuse("room", server, room_id)
                return None
            room = server.rooms[room_id] = Room(room_id, now)
        else:
            room.seen = now
        return room

    def _new_publisher(
        self, server: Server, room_id: str, publisher_id: str, now: float
    ) -> Publisher | None:
        """A publisher not tracked yet; None when limits.max_tracked_publishers keeps it out."""
        total = sum(len(s.publishers) for s in self.servers.values())
        if total >= self.limits.max_tracked_publishers:
            self._refuse("publisher", server, (room_id, publisher_id))
            return None
        publisher = Publisher(room_id, publisher_id, None, now, joined_at=now)
        server.add_publisher(publisher)
        return publisher

    def _remove_publisher(
        self, server: Server, publisher: Publisher, gone_at: float | None = None
    ) -> None:
        """Forget a publisher; with ``gone_at``, a poll answer asked before then will not
        bring it back."""
        key = (publisher.room, publisher.publisher_id)
        server.pop_publisher(key)
        if gone_at is not None:
            self.gone_publisher(server, key, gone_at)
        self._drop_feed(server, publisher.room, publisher.publisher_id)

    def _is_gone(self, server: Server, event: Event) -> bool:
        """Whether an event names a session or handle already destroyed or detached."""
        if event.session_id is None:
            return False
        if event.session_id in server.gone_sessions:
            return True
        return event.handle_id is not None and (
            (event.session_id, event.handle_id) in server.gone_handles
        )

    def _drop_feed(self, server: Server, room: str, feed: str) -> None:
        for subscriber in server.subscribers_in(room):
            if feed in subscriber.feed_ids:
                subscriber.feeds = {(m, f) for m, f in subscriber.feeds if f != feed}

    # --- sweeping --------------------------------------------------------------------------

    def sweep(self, now: float) -> int:
        """Drop what nothing confirmed within stale_after; returns how many objects went."""
        horizon = now - self.limits.stale_after
        dropped = 0
        for server in list(self.servers.values()):
            dropped += self._sweep_server(server, horizon)
            if (
                not server.configured
                and server.seen < horizon
                and not server.sessions
                and not server.rooms
            ):
                del self.servers[server.name]
        return dropped

    def _sweep_server(self, server: Server, horizon: float) -> int:
        dropped = 0
        # A polled target's list_sessions confirms each session every poll; its handles are
        # confirmed by list_handles in turn, and until then their live session vouches for them.
        polled = server.listed_at is not None and server.listed_at >= horizon
        for session in list(server.sessions.values()):
            if polled and session.seen >= horizon:
                continue
            stale = [h.handle_id for h in session.handles.values() if h.seen < horizon]
            for handle_id in stale:
                if self._remove_handle(server, session, handle_id, None):
                    self._count_drop("publisher", "stale")
                    dropped += 1
            self._count_drop("handle", "stale", len(stale))
            dropped += len(stale)
            if session.seen < horizon and not session.handles:
                server.sessions.pop(session.session_id)
                self._count_drop("session", "stale")
                dropped += 1
        for publisher in list(server.publishers.values()):
            alive = publisher.handle is not None and server.handle(publisher.handle) is not None
            if not alive and publisher.seen < horizon:
                self._remove_publisher(server, publisher)
                self._count_drop("publisher", "stale")
                dropped += 1
        occupied = server.room_publishers.keys() | server.room_subscribers.keys()
        for room_id, room in list(server.rooms.items()):
            if room.seen < horizon and room_id not in occupied:
                del server.rooms[room_id]
                self._count_drop("room", "stale")
                dropped += 1
        for session_id in [k for k, t in server.gone_sessions.items() if t < horizon]:
            del server.gone_sessions[session_id]
        for handle_key in [k for k, t in server.gone_handles.items() if t < horizon]:
            del server.gone_handles[handle_key]
        for publisher_key in [k for k, t in server.gone_publishers.items() if t < horizon]:
            del server.gone_publishers[publisher_key]
        return dropped

    # --- views for metrics and the API -----------------------------------------------------

    def tracked(self) -> dict[str, int]:
        servers = self.servers.values()
        return {
            "sessions": sum(len(s.sessions) for s in servers),
            "handles": self.handle_count,
            "publishers": sum(len(s.publishers) for s in servers),
            "subscribers": sum(len(s.subscribers) for s in servers),
            "rooms": sum(len(s.rooms) for s in servers),
        }


Applier = Callable[[State, Server, Event, float], None]

# The registry of appliers, by body type; imported last: appliers only need State for typing.
from monitor.state.from_events import EVENT_APPLIERS  # noqa: E402
from monitor.state.from_polls import POLL_APPLIERS  # noqa: E402

APPLIERS: dict[type[Body], Applier] = {**EVENT_APPLIERS, **POLL_APPLIERS}
