"""The one state model: servers -> sessions -> handles, rooms, publishers, subscribers.

Every change goes through ``State.apply(event, now)``. Events are the main source; Admin API
polls will be turned into records applied through the same door. ``now`` is the daemon's
monotonic clock: it stamps what each record confirms, and ``sweep`` drops what nothing has
confirmed for ``stale_after`` seconds.

Janus 1.1.2 facts this relies on (janus-protocol.md §1.2, §2, fixture README):
- handle ids are unique only within their session, so handles are keyed (session, handle);
- `unpublished`, `leaving` and `kicked` carry no session or handle: resolve them through the
  (room, publisher id) -> handle map built from `joined`;
- events for a session or handle keep arriving after it is destroyed (queued media stats), so
  recently removed sessions and handles are remembered and not re-created by stragglers;
- a subscriber `updated` can arrive with the context of the publisher whose change caused it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from monitor.events import (
    VIDEOROOM,
    Body,
    ConnectionEvent,
    CoreEvent,
    Event,
    HandleEvent,
    MediaStat,
    MediaStatsEvent,
    PublisherConfigured,
    PublisherGone,
    PublisherJoined,
    PublisherPublished,
    PublisherStream,
    RoomCreated,
    RoomDestroyed,
    RoomEdited,
    ServerInfo,
    SessionEvent,
    SubscriberStream,
    SubscriberStreams,
    SubscriberUnsubscribed,
    SubscriberUp,
)
from monitor.polls import (
    PolledHandle,
    PolledHandles,
    PolledInfo,
    PolledParticipants,
    PolledRooms,
    PolledSessions,
)

HandleKey = tuple[int, int]  # (session_id, handle_id)
PublisherKey = tuple[str, str]  # (room, publisher id)

PUBLISHER = "publisher"
SUBSCRIBER = "subscriber"


@dataclass(slots=True)
class Handle:
    session_id: int
    handle_id: int
    plugin: str | None
    opaque_id: str | None
    seen: float
    role: str | None = None  # publisher | subscriber, once a VideoRoom join tells
    room: str | None = None
    publisher_id: str | None = None
    pc_up: bool = False
    media: dict[tuple[str | None, int], MediaStat] = field(default_factory=dict)
    media_seen: float | None = None
    media_source: str | None = None  # "event" (media stats) or "poll" (full handle_info)
    explained_at: float | None = None  # when a handle_info last told its plugin and role
    since: float = 0.0  # first seen

    @property
    def explained(self) -> bool:
        """Whether its plugin is known, and for VideoRoom its role (or that it has none)."""
        if self.plugin is None:
            return False
        return self.plugin != VIDEOROOM or self.role is not None or self.explained_at is not None


@dataclass(slots=True)
class Session:
    session_id: int
    seen: float
    transport: str | None = None
    handles: dict[int, Handle] = field(default_factory=dict)
    since: float = 0.0  # first seen, by an event or a poll
    listed_at: float | None = None  # when a list_handles last confirmed its handles


@dataclass(slots=True)
class Room:
    room: str
    seen: float
    bitrate_cap: int | None = None  # bits/s, 0 = no cap, None = not known yet
    cap_source: str | None = None  # "poll" (authoritative) or "event" (from a publisher join)
    max_publishers: int | None = None
    recording: bool | None = None
    description: str | None = None
    is_private: bool | None = None
    needs_confirm: bool = True  # edited, or only implied by events: a poll should confirm it
    confirmed_at: float | None = None  # last listed by a VideoRoom `list`
    members_at: float | None = None  # last listparticipants
    members_changed: bool = True  # events changed who is in it since the last listparticipants
    unlisted: bool = False  # known, but the last `list` did not show it (private or gone)


@dataclass(slots=True)
class Publisher:
    room: str
    publisher_id: str
    display: str | None
    seen: float
    joined_at: float
    handle: HandleKey | None = None
    opaque_id: str | None = None
    publishing: bool = False
    bitrate_limit: int | None = None  # the publisher's REMB cap from `configured`, bits/s
    streams: tuple[PublisherStream, ...] = ()
    configured_since_join: bool = False


@dataclass(slots=True)
class Subscriber:
    handle: HandleKey
    room: str
    seen: float
    feeds: dict[str | None, str] = field(default_factory=dict)  # subscriber mid -> feed id
    pc_up: bool = False

    @property
    def feed_ids(self) -> set[str]:
        return set(self.feeds.values())


@dataclass(slots=True)
class Server:
    name: str
    configured: bool
    seen: float
    info: ServerInfo | None = None
    running: bool | None = None  # from core started/shutdown events
    sessions: dict[int, Session] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    publishers: dict[PublisherKey, Publisher] = field(default_factory=dict)
    subscribers: dict[HandleKey, Subscriber] = field(default_factory=dict)
    gone_sessions: dict[int, float] = field(default_factory=dict)
    gone_handles: dict[HandleKey, float] = field(default_factory=dict)
    handle_count: int = 0
    last_event_timestamp: int = 0

    def handles(self) -> Iterator[Handle]:
        for session in self.sessions.values():
            yield from session.handles.values()

    def handle(self, key: HandleKey) -> Handle | None:
        session = self.sessions.get(key[0])
        return session.handles.get(key[1]) if session else None


@dataclass(slots=True)
class Limits:
    stale_after: float = 60.0
    max_tracked_handles: int = 50000
    max_unknown_emitters: int = 16


class State:
    """All tracked state, and the only code that changes it."""

    def __init__(self, limits: Limits | None = None, targets: tuple[str, ...] = ()) -> None:
        self.limits = limits or Limits()
        self.servers: dict[str, Server] = {}
        self.handle_count = 0
        self.dropped: dict[tuple[str, str], int] = {}  # (kind, reason) -> count
        # Handles refused at the limit, remembered (bounded) so each is counted once.
        self._refused: OrderedDict[tuple[str, int, int], None] = OrderedDict()
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
        self.apply_all((event,), now)

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
            refused = (server.name, session_id, handle_id)
            if refused not in self._refused:
                self._refused[refused] = None
                if len(self._refused) > self.limits.max_tracked_handles:
                    self._refused.popitem(last=False)
                self._count_drop("handle", "limit")
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
            server.gone_handles[(session.session_id, handle_id)] = gone_at
        if handle is None:
            return False
        server.handle_count -= 1
        self.handle_count -= 1
        return self._forget_role(server, handle)

    def _forget_role(self, server: Server, handle: Handle) -> bool:
        key = (handle.session_id, handle.handle_id)
        server.subscribers.pop(key, None)
        if handle.publisher_id is not None and handle.room is not None:
            publisher = server.publishers.get((handle.room, handle.publisher_id))
            if publisher is not None and publisher.handle == key:
                self._remove_publisher(server, publisher)
                return True
        return False

    def _remove_session(self, server: Server, session_id: int, now: float) -> None:
        server.gone_sessions[session_id] = now
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
        server.gone_sessions.clear()
        server.gone_handles.clear()

    # --- rooms, publishers, subscribers ----------------------------------------------------

    def _room(self, server: Server, room_id: str, now: float) -> Room:
        room = server.rooms.get(room_id)
        if room is None:
            room = server.rooms[room_id] = Room(room_id, now)
        else:
            room.seen = now
        return room

    def _remove_publisher(self, server: Server, publisher: Publisher) -> None:
        server.publishers.pop((publisher.room, publisher.publisher_id), None)
        self._drop_feed(server, publisher.room, publisher.publisher_id)

    def _drop_feed(self, server: Server, room: str, feed: str) -> None:
        for subscriber in server.subscribers.values():
            if subscriber.room == room and feed in subscriber.feeds.values():
                subscriber.feeds = {m: f for m, f in subscriber.feeds.items() if f != feed}

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
        for session in list(server.sessions.values()):
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
        occupied = {p.room for p in server.publishers.values()}
        occupied.update(s.room for s in server.subscribers.values())
        for room_id, room in list(server.rooms.items()):
            if room.seen < horizon and room_id not in occupied:
                del server.rooms[room_id]
                self._count_drop("room", "stale")
                dropped += 1
        for session_id in [k for k, t in server.gone_sessions.items() if t < horizon]:
            del server.gone_sessions[session_id]
        for handle_key in [k for k, t in server.gone_handles.items() if t < horizon]:
            del server.gone_handles[handle_key]
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


# --- appliers: one per body type, same signature (the registry) ----------------------------

Applier = Callable[[State, Server, Event, float], None]


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
            server.gone_handles[(event.session_id, event.handle_id)] = now
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
    for stat in body.stats:
        handle.media[(stat.mid, stat.layer)] = stat
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
    room = state._room(server, body.room, now)
    room.needs_confirm = True  # created/edited events carry only the room id


def _apply_room_destroyed(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, RoomDestroyed)
    state._touch(server, event, now)
    _drop_room(state, server, body.room)


def _drop_room(state: State, server: Server, room_id: str) -> None:
    server.rooms.pop(room_id, None)
    for publisher in [p for k, p in server.publishers.items() if k[0] == room_id]:
        state._remove_publisher(server, publisher)
    for handle_key in [k for k, s in server.subscribers.items() if s.room == room_id]:
        del server.subscribers[handle_key]
    for handle in server.handles():
        if handle.room == room_id:
            handle.room = None


def _publisher(
    state: State, server: Server, event: Event, room_id: str, publisher_id: str, now: float
) -> Publisher:
    """The publisher an event with a publisher handle context speaks of; created if missed."""
    return _link_publisher(
        state, server, _plugin_handle(state, server, event, now), room_id, publisher_id, now
    )


def _link_publisher(
    state: State,
    server: Server,
    handle: Handle | None,
    room_id: str,
    publisher_id: str,
    now: float,
) -> Publisher:
    state._room(server, room_id, now)
    publisher = server.publishers.get((room_id, publisher_id))
    if publisher is None:
        publisher = Publisher(room_id, publisher_id, None, now, joined_at=now)
        server.publishers[(room_id, publisher_id)] = publisher
    publisher.seen = now
    if handle is not None:
        key = (handle.session_id, handle.handle_id)
        if publisher.handle != key:
            publisher.handle = key
            publisher.opaque_id = handle.opaque_id
        if handle.role == SUBSCRIBER:
            server.subscribers.pop(key, None)
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
    server.rooms[body.room].members_changed = True
    publisher.display = body.display
    publisher.joined_at = now
    publisher.publishing = False
    publisher.configured_since_join = False


def _apply_configured(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherConfigured)
    publisher = _publisher(state, server, event, body.room, body.publisher, now)
    publisher.bitrate_limit = body.bitrate
    if not publisher.configured_since_join and body.bitrate is not None:
        # The first configure after a join carries the bitrate copied from the room, unless the
        # client asked for another one: a hint until a poll reads the room's real cap.
        publisher.configured_since_join = True
        room = server.rooms[body.room]
        if room.cap_source != "poll":
            room.bitrate_cap, room.cap_source = body.bitrate, "event"


def _apply_published(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PublisherPublished)
    publisher = _publisher(state, server, event, body.room, body.publisher, now)
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
    room = server.rooms.get(body.room)
    if room is not None:
        room.members_changed = True
    if publisher is None:
        return
    if not body.left_room:
        publisher.publishing = False
        publisher.seen = now
        state._drop_feed(server, body.room, body.publisher)
        return
    state._remove_publisher(server, publisher)
    handle = server.handle(publisher.handle) if publisher.handle else None
    if handle is not None:
        handle.room = None  # a VideoRoom handle can never rejoin after leaving (425)


def _apply_subscriber_streams(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, SubscriberStreams)
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
) -> Subscriber:
    if handle.role == PUBLISHER:
        state._forget_role(server, handle)
    key = (handle.session_id, handle.handle_id)
    room = state._room(server, room_id, now)
    subscriber = server.subscribers.get(key)
    if subscriber is None or subscriber.room != room_id:
        subscriber = server.subscribers[key] = Subscriber(key, room_id, now)
        room.members_changed = True
    subscriber.seen = now
    subscriber.feeds = {s.mid: s.feed for s in streams if s.active and s.feed is not None}
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
        subscriber.feeds = {m: f for m, f in subscriber.feeds.items() if f != body.feed}
        subscriber.pc_up = False


# --- polls: Admin API answers, applied through the same door ------------------------------


def _apply_polled_info(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledInfo)
    server.info = body.info
    server.running = True


def _apply_polled_sessions(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledSessions)
    for session_id in body.session_ids:
        if session_id not in server.sessions:
            gone_at = server.gone_sessions.get(session_id)
            if gone_at is not None and gone_at >= body.asked_at:
                continue  # destroyed after the request went out: the list is older
            server.gone_sessions.pop(session_id, None)
            state._session(server, session_id, now)
    for session_id, session in list(server.sessions.items()):
        # Only what no event confirmed after the request went out can be declared gone.
        if session_id not in body.session_ids and session.seen < body.asked_at:
            state._remove_session(server, session_id, now)
            state._count_drop("session", "reconcile")


def _apply_polled_handles(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledHandles)
    session = server.sessions.get(body.session_id)
    if body.handle_ids is None:
        if session is not None and session.seen < body.asked_at:
            state._remove_session(server, body.session_id, now)
            state._count_drop("session", "reconcile")
        return
    for handle_id in body.handle_ids:
        key = (body.session_id, handle_id)
        gone_at = server.gone_handles.get(key)
        if gone_at is not None:
            if gone_at >= body.asked_at:
                continue  # detached after the request went out: the list is older
            del server.gone_handles[key]
        state._confirm(server, body.session_id, handle_id, None, now)
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
        state._remove_handle(server, session, handle_id, now)
    state._count_drop("handle", "reconcile", len(stale))


def _apply_polled_handle(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledHandle)
    session = server.sessions.get(body.session_id)
    if not body.exists:
        handle = session.handles.get(body.handle_id) if session else None
        if session is not None and handle is not None and handle.seen < body.asked_at:
            state._remove_handle(server, session, body.handle_id, now)
            state._count_drop("handle", "reconcile")
        return
    handle = state._confirm(server, body.session_id, body.handle_id, body.opaque_id, now)
    if handle is None:
        return
    handle.explained_at = now
    if body.plugin:
        handle.plugin = body.plugin
    if body.opaque_id:
        handle.opaque_id = body.opaque_id
    if body.media is not None:
        handle.media = {(s.mid, s.layer): s for s in body.media}
        handle.media_seen, handle.media_source = now, "poll"
    if body.role == PUBLISHER and body.room is not None and body.publisher_id is not None:
        if handle.publisher_id != body.publisher_id or handle.room != body.room:
            state._forget_role(server, handle)
        publisher = _link_publisher(state, server, handle, body.room, body.publisher_id, now)
        publisher.publishing = body.publishing
        if body.display is not None:
            publisher.display = body.display
        if body.bitrate_limit is not None:
            publisher.bitrate_limit = body.bitrate_limit
    elif body.role == SUBSCRIBER and body.room is not None:
        _link_subscriber(state, server, handle, body.room, body.feeds, now)
    elif body.role is not None:
        # Joined once, now in no room (left or kicked): the handle keeps its role.
        state._forget_role(server, handle)
        handle.role, handle.room = body.role, None


def _apply_polled_rooms(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledRooms)
    members: dict[str, int] = {}
    for room_id, _ in server.publishers:
        members[room_id] = members.get(room_id, 0) + 1
    listed = set()
    for polled in body.rooms:
        listed.add(polled.room)
        room = state._room(server, polled.room, now)
        room.bitrate_cap, room.cap_source = polled.bitrate, "poll"
        room.max_publishers = polled.max_publishers
        room.recording = polled.recording
        room.description = polled.description
        room.is_private = polled.is_private
        room.confirmed_at, room.needs_confirm, room.unlisted = now, False, False
        if polled.participants is not None and polled.participants != members.get(polled.room, 0):
            room.members_changed = True
    for room_id, room in server.rooms.items():
        if room_id not in listed and room.seen < body.asked_at:
            room.unlisted = True  # private (list needs admin_key) or gone: listparticipants tells


def _apply_polled_participants(state: State, server: Server, event: Event, now: float) -> None:
    body = event.body
    assert isinstance(body, PolledParticipants)
    room = server.rooms.get(body.room)
    if not body.exists:
        if room is not None and room.seen < body.asked_at:
            _drop_room(state, server, body.room)
            state._count_drop("room", "reconcile")
        return
    room = state._room(server, body.room, now)
    room.members_at, room.members_changed, room.unlisted = now, False, False
    listed = {p.publisher_id: p for p in body.participants}
    for key, publisher in list(server.publishers.items()):
        if key[0] == body.room and key[1] not in listed and publisher.seen < body.asked_at:
            state._remove_publisher(server, publisher)
            handle = server.handle(publisher.handle) if publisher.handle else None
            if handle is not None:
                handle.room = None
            state._count_drop("publisher", "reconcile")
    for participant in body.participants:
        publisher = _link_publisher(state, server, None, body.room, participant.publisher_id, now)
        publisher.publishing = participant.publishing
        if participant.display is not None:
            publisher.display = participant.display


APPLIERS: dict[type[Body], Applier] = {
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
    PolledInfo: _apply_polled_info,
    PolledSessions: _apply_polled_sessions,
    PolledHandles: _apply_polled_handles,
    PolledHandle: _apply_polled_handle,
    PolledRooms: _apply_polled_rooms,
    PolledParticipants: _apply_polled_participants,
}
