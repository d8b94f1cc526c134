"""Removal hooks: how signal modules learn that what they keep data for has gone away.

Every removal path (events, the stale sweep, Admin API reconcile, a Janus restart) goes
through ``Ops``, which calls these; a signal that keeps per-handle data subscribes once and
drops its data there, so nothing it holds outlives the state it describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from monitor.state.model import Handle, Publisher, Server

log = structlog.get_logger("monitor.state")

HANDLE_DETACHED = "detached"  # a detached event, or its session destroyed / timed out
HANDLE_STALE = "stale"  # nothing confirmed it within limits.stale_after
HANDLE_RECONCILE = "reconcile"  # the Admin API no longer lists it

HandleRemoved = Callable[["Server", "Handle", str], None]
PublisherRemoved = Callable[["Server", "Publisher"], None]
RoomRemoved = Callable[["Server", str], None]
ServerReset = Callable[["Server"], None]


@dataclass(slots=True)
class RemovalHooks:
    """Subscribers to each kind of removal, called in subscription order."""

    handle_removed: list[HandleRemoved] = field(default_factory=list)
    publisher_removed: list[PublisherRemoved] = field(default_factory=list)
    room_removed: list[RoomRemoved] = field(default_factory=list)
    server_reset: list[ServerReset] = field(default_factory=list)

    def on_handle_removed(self, hook: HandleRemoved) -> HandleRemoved:
        """(server, handle, reason): the handle is gone (reason: detached, stale, reconcile)."""
        self.handle_removed.append(hook)
        return hook

    def on_publisher_removed(self, hook: PublisherRemoved) -> PublisherRemoved:
        """(server, publisher): it left, was kicked, its handle or room went, or went stale."""
        self.publisher_removed.append(hook)
        return hook

    def on_room_removed(self, hook: RoomRemoved) -> RoomRemoved:
        """(server, room id): destroyed, not listed any more, or stale."""
        self.room_removed.append(hook)
        return hook

    def on_server_reset(self, hook: ServerReset) -> ServerReset:
        """(server): Janus started or shut down, or an unknown emitter was forgotten: every
        session, handle and room of it is gone at once (no per-handle calls)."""
        self.server_reset.append(hook)
        return hook

    # A hook's bug must not undo a removal half way, nor stop the other hooks.

    def handle_gone(self, server: Server, handle: Handle, reason: str) -> None:
        for hook in self.handle_removed:
            _call(hook, server, handle, reason)

    def publisher_gone(self, server: Server, publisher: Publisher) -> None:
        for hook in self.publisher_removed:
            _call(hook, server, publisher)

    def room_gone(self, server: Server, room: str) -> None:
        for hook in self.room_removed:
            _call(hook, server, room)

    def server_gone(self, server: Server) -> None:
        for hook in self.server_reset:
            _call(hook, server)


def _call(hook: Callable[..., None], *args: object) -> None:
    try:
        hook(*args)
    except Exception:
        log.exception("removal_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)))
