"""Plugin-handle reuse (SPEC "Handle reuse"): one handle used for a second purpose.

Keyed on (session_id, handle_id), judged before membership changes the handle (the BEFORE
stage), so the role, room and feeds it had are still there:

- ``role_change``: publisher and subscriber on one handle;
- ``second_feed``: a subscriber handle that takes a publisher's feed it never had (a
  ``subscribe`` on the same handle);
- ``rejoin``: a second join as publisher on one handle (after ``leaving``, or as another id);
- ``second_room``: the handle joins (or subscribes in) a room other than its first.

Not reuse: a subscriber ``updated`` that Janus 1.1.2 sends with the ids of the publisher
whose change caused it (fixture 40-reuse); unpublish then publish on one handle; a feed that
comes back after its publisher republished. Janus 1.1.2 refuses (425) a second join of
either kind on a handle and emits no event for the refusal, so ``role_change`` and
``rejoin`` appear only where events or polls show them happening.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.decode.polls import PolledHandle
from monitor.decode.records import Event
from monitor.decode.videoroom import PublisherJoined, SubscriberStreams
from monitor.state import PUBLISHER, SUBSCRIBER, Ops, RemovalHooks, Router, Server, Stage
from monitor.state.model import Handle

PATTERNS = ("role_change", "second_feed", "rejoin", "second_room")
MAX_FEEDS = 256  # feeds remembered per handle

HandleRef = tuple[str, int, int]


NOTHING: frozenset[str] = frozenset()


@dataclass(slots=True)
class HandleUse:
    """What a handle has been used for, and which reuse patterns it showed.

    Immutable values, replaced when they grow: every live handle has one of these, most use
    one room, publishers no feeds, and few show a pattern, so the empty ones are shared and a
    room list is a tuple (48 bytes for one, against 216 for a set)."""

    rooms: tuple[str, ...] = ()
    feeds: frozenset[str] = NOTHING  # every feed it ever subscribed to
    patterns: frozenset[str] = NOTHING


class ReuseSignal:
    def __init__(self) -> None:
        self.handles: dict[HandleRef, HandleUse] = {}
        # The handles that showed a pattern (a few among 20 k): what the scrape walks.
        self.flagged: set[HandleRef] = set()
        self.counts: dict[tuple[str, str, str], int] = {}  # (server, plugin, pattern)

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        before = Stage.BEFORE
        router.register(PublisherJoined, before, self._on_joined)
        router.register(SubscriberStreams, before, self._on_streams)
        router.register(PolledHandle, before, self._on_polled)
        hooks.on_handle_removed(self._forget_handle)
        hooks.on_server_reset(self._forget_server)

    def _use(self, server: Server, handle: Handle) -> HandleUse:
        ref = (server.name, handle.session_id, handle.handle_id)
        use = self.handles.get(ref)
        if use is None:
            use = self.handles[ref] = HandleUse()
            if handle.room is not None:  # known before this signal saw it (a poll, a restart)
                use.rooms = (handle.room,)
        return use

    def _flag(self, server: Server, handle: Handle, use: HandleUse, pattern: str) -> None:
        if pattern in use.patterns:
            return
        use.patterns = use.patterns | {pattern}
        self.flagged.add((server.name, handle.session_id, handle.handle_id))
        key = (server.name, handle.plugin or "unknown", pattern)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _handle(self, server: Server, event: Event) -> Handle | None:
        if event.session_id is None or event.handle_id is None or self._gone(server, event):
            return None
        return server.handle((event.session_id, event.handle_id))

    @staticmethod
    def _gone(server: Server, event: Event) -> bool:
        key = (event.session_id or 0, event.handle_id or 0)
        return event.session_id in server.gone_sessions or key in server.gone_handles

    # --- what each body says -------------------------------------------------------------------

    def _joined_as_publisher(
        self, server: Server, handle: Handle, room: str, publisher: str
    ) -> None:
        use = self._use(server, handle)
        if handle.role == SUBSCRIBER:
            self._flag(server, handle, use, "role_change")
        elif (
            handle.role == PUBLISHER
            and handle.publisher_id is not None
            and (handle.publisher_id != publisher or handle.room is None)
        ):
            self._flag(server, handle, use, "rejoin")
        if use.rooms and room not in use.rooms:
            self._flag(server, handle, use, "second_room")
        _add_room(use, room)

    def _subscribed(
        self, server: Server, handle: Handle, room: str, feeds: set[str], update: bool
    ) -> None:
        use = self._use(server, handle)
        if handle.role == PUBLISHER and not update:
            self._flag(server, handle, use, "role_change")
        if use.rooms and room not in use.rooms:
            self._flag(server, handle, use, "second_room")
        if use.feeds and (handle.role == SUBSCRIBER or update) and not feeds <= use.feeds:
            self._flag(server, handle, use, "second_feed")
        _add_room(use, room)
        if len(use.feeds) < MAX_FEEDS and not feeds <= use.feeds:
            use.feeds = use.feeds | feeds

    def _on_joined(
        self, ops: Ops, server: Server, event: Event, body: PublisherJoined, now: float
    ) -> None:
        handle = self._handle(server, event)
        if handle is not None:
            self._joined_as_publisher(server, handle, body.room, body.publisher)

    def _on_streams(
        self, ops: Ops, server: Server, event: Event, body: SubscriberStreams, now: float
    ) -> None:
        handle = self._handle(server, event)
        if handle is None or (body.update and handle.role != SUBSCRIBER):
            return  # 1.1.2 sends some subscriber updates with the publisher's ids: not reuse
        feeds = {s.feed for s in body.streams if s.active and s.feed is not None}
        self._subscribed(server, handle, body.room, feeds, body.update)

    def _on_polled(
        self, ops: Ops, server: Server, event: Event, body: PolledHandle, now: float
    ) -> None:
        handle = server.handle((body.session_id, body.handle_id))
        if handle is None or not body.exists or body.room is None:
            return
        if body.role == PUBLISHER and body.publisher_id is not None:
            self._joined_as_publisher(server, handle, body.room, body.publisher_id)
        elif body.role == SUBSCRIBER:
            if handle.role == PUBLISHER:  # the poll is Janus's own word on the handle's type
                self._flag(server, handle, self._use(server, handle), "role_change")
            feeds = {s.feed for s in body.feeds if s.active and s.feed is not None}
            self._subscribed(server, handle, body.room, feeds, update=True)

    # --- removal and views ---------------------------------------------------------------------

    def _forget_handle(self, server: Server, handle: Handle, reason: str) -> None:
        ref = (server.name, handle.session_id, handle.handle_id)
        self.handles.pop(ref, None)
        self.flagged.discard(ref)

    def _forget_server(self, server: Server) -> None:
        for ref in [r for r in self.handles if r[0] == server.name]:
            del self.handles[ref]
        self.flagged = {ref for ref in self.flagged if ref[0] != server.name}

    def reused(self, server: Server, key: tuple[int, int] | None) -> frozenset[str]:
        use = self.handles.get((server.name, *key)) if key is not None else None
        return use.patterns if use is not None else NOTHING


def _add_room(use: HandleUse, room: str) -> None:
    if room not in use.rooms and len(use.rooms) < MAX_FEEDS:
        use.rooms = (*use.rooms, room)
