"""The records state is made of: servers, sessions, handles, rooms, publishers, subscribers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor.decode.records import VIDEOROOM, ServerInfo
from monitor.decode.videoroom import PublisherStream

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
    # The kind of each stream (mid, simulcast layer) stats were seen for: the numbers live in
    # the signals that use them. A retained MediaStat per stream was 43 MB at 10 k publishers
    # and, being GC-tracked and replaced every stats period, made full collections frequent.
    media: dict[tuple[str | None, int], str] = field(default_factory=dict)
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
    members_at: float | None = None  # last listparticipants
    members_changed: bool = True  # who is in it changed since the last listparticipants
    changed_at: float = 0.0  # when events last changed who is in it
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
    # (subscriber mid, feed id): a data m-line can relay several feeds on one mid
    feeds: set[tuple[str | None, str]] = field(default_factory=set)
    pc_up: bool = False

    @property
    def feed_ids(self) -> set[str]:
        return {feed for _, feed in self.feeds}


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
    gone_publishers: dict[PublisherKey, float] = field(default_factory=dict)
    handle_count: int = 0
    # Handles per plugin name (None: not known yet), kept as handles come, go and learn
    # their plugin: the scrape reads it instead of walking 20 k handles.
    plugin_handles: dict[str | None, int] = field(default_factory=dict)
    last_event_timestamp: int = 0
    listed_at: float | None = None  # the last list_sessions answer (the target is polled)
    string_ids: bool | None = None  # the VideoRoom's id mode, as its `list` shows it
    # Who is in each room, so that room-wide changes need not scan every participant.
    room_publishers: dict[str, set[str]] = field(default_factory=dict)
    room_subscribers: dict[str, set[HandleKey]] = field(default_factory=dict)

    def set_plugin(self, handle: Handle, plugin: str) -> None:
        """What plugin the handle is attached to (the only way handle.plugin changes)."""
        if handle.plugin != plugin:
            counts = self.plugin_handles
            _count(counts, handle.plugin, -1)
            handle.plugin = plugin
            counts[plugin] = counts.get(plugin, 0) + 1

    def count_plugin(self, handle: Handle) -> None:
        """A handle now tracked: counted under its plugin (None until it is known)."""
        _count(self.plugin_handles, handle.plugin, 1)

    def forget_plugin(self, handle: Handle) -> None:
        """The handle is no longer tracked: no longer counted."""
        _count(self.plugin_handles, handle.plugin, -1)

    def add_publisher(self, publisher: Publisher) -> None:
        self.publishers[(publisher.room, publisher.publisher_id)] = publisher
        self.room_publishers.setdefault(publisher.room, set()).add(publisher.publisher_id)

    def pop_publisher(self, key: PublisherKey) -> Publisher | None:
        publisher = self.publishers.pop(key, None)
        if publisher is not None:
            members = self.room_publishers.get(key[0])
            if members is not None:
                members.discard(key[1])
                if not members:
                    del self.room_publishers[key[0]]
        return publisher

    def add_subscriber(self, subscriber: Subscriber) -> None:
        self.pop_subscriber(subscriber.handle)
        self.subscribers[subscriber.handle] = subscriber
        self.room_subscribers.setdefault(subscriber.room, set()).add(subscriber.handle)

    def pop_subscriber(self, key: HandleKey) -> Subscriber | None:
        subscriber = self.subscribers.pop(key, None)
        if subscriber is not None:
            members = self.room_subscribers.get(subscriber.room)
            if members is not None:
                members.discard(key)
                if not members:
                    del self.room_subscribers[subscriber.room]
        return subscriber

    def publishers_in(self, room: str) -> list[Publisher]:
        ids = self.room_publishers.get(room, ())
        return [self.publishers[(room, publisher_id)] for publisher_id in list(ids)]

    def subscribers_in(self, room: str) -> list[Subscriber]:
        return [self.subscribers[key] for key in list(self.room_subscribers.get(room, ()))]

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
    max_tracked_rooms: int = 20000
    max_tracked_publishers: int = 50000
    max_tracked_sessions: int = 50000


MAX_STREAMS_PER_HANDLE = 64
"""Media stats kept per handle, one per (mid, simulcast layer): new keys beyond are ignored."""


def _count(counts: dict[str | None, int], key: str | None, by: int) -> None:
    left = counts.get(key, 0) + by
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def remember_gone(gone: dict[Any, float], key: Any, at: float, bound: int) -> None:
    """Note that ``key`` went away at ``at``; at most ``bound`` are kept, oldest out first,
    so a flood of destroyed ids cannot grow memory (they are dropped after stale_after too)."""
    gone.pop(key, None)
    gone[key] = at
    if len(gone) > bound:
        del gone[next(iter(gone))]


def expire_gone(gone: dict[Any, float], horizon: float) -> int:
    """Drop the tombstones noted before ``horizon``; returns how many went.

    ``remember_gone`` re-inserts, so the dict is in the order the ids went: the walk stops at
    the first one to keep, and a sweep costs what expires, not what is kept (at 20 k events/s
    over 100 k tombstones per kind were walked every sweep).
    """
    expired = []
    for key, at in gone.items():
        if at >= horizon:
            break
        expired.append(key)
    for key in expired:
        del gone[key]
    return len(expired)
