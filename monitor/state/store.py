"""State: the records, the one door that changes them, and the sweep of stale ones."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from monitor.decode.records import Event
from monitor.state.dispatch import Handler, Router
from monitor.state.hooks import HANDLE_STALE, RemovalHooks
from monitor.state.membership import register
from monitor.state.model import Limits, Server, expire_gone
from monitor.state.ops import Ops
from monitor.telemetry import Telemetry

# Events of a destroyed session or handle that Janus had queued before the destroy (another
# thread's stats, a hangup) arrive within milliseconds of it, seconds under load.
TOMBSTONE_MARGIN = 10.0
SWEEP_PACE = 256  # sessions (publishers, rooms) walked between the sweep's pause points


class State:
    """All tracked state. It changes only through ``apply`` / ``apply_all`` (events and poll
    records, each dispatched to its handlers in table order) and ``sweep``."""

    def __init__(
        self,
        limits: Limits | None = None,
        targets: tuple[str, ...] = (),
        *,
        table: Mapping[type, tuple[Handler, ...]] | None = None,
        hooks: RemovalHooks | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.servers: dict[str, Server] = {}
        self.handle_count = 0
        self.hooks = hooks or RemovalHooks()
        self.telemetry = telemetry or Telemetry()
        self.ops = Ops(self, self.hooks, self.telemetry)
        self.table = table if table is not None else membership_table()
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

    def forget(self, name: str) -> bool:
        """Drop a server and everything under it (another daemon of the fleet owns it now)."""
        server = self.servers.pop(name, None)
        if server is None:
            return False
        self.ops.reset_server(server)
        return True

    def server(self, name: str, now: float) -> Server:
        server = self.servers.get(name)
        if server is None:
            server = self.servers[name] = Server(name, configured=False, seen=now)
        return server

    # --- the door --------------------------------------------------------------------------

    def apply(self, event: Event, now: float) -> None:
        """Apply one event or poll record; a handler's failure is raised to the caller."""
        failed = self.apply_all((event,), now)
        if failed:
            raise failed[0][1]

    def apply_all(self, events: Iterable[Event], now: float) -> list[tuple[Event, Exception]]:
        """Apply events in order; one whose handler fails is returned with its error, and
        the rest go on (its later handlers are skipped)."""
        failed: list[tuple[Event, Exception]] = []
        server: Server | None = None
        table, ops = self.table, self.ops
        touch = ops.touch
        for event in events:
            if server is None or event.emitter != server.name:
                server = self.server(event.emitter, now)
                server.seen = now
            if event.timestamp > server.last_event_timestamp:
                server.last_event_timestamp = event.timestamp
            body = event.body
            handlers = table.get(type(body))
            try:
                if handlers is None:  # the default membership step, without a dispatch
                    if event.session_id is not None:
                        touch(server, event, now)
                else:
                    for handler in handlers:
                        handler(ops, server, event, body, now)
            except Exception as exc:  # a bug must not cost the other events
                failed.append((event, exc))
        return failed

    # --- sweeping --------------------------------------------------------------------------

    def sweep(self, now: float, polls_since: Mapping[str, float] | None = None) -> int:
        """Drop what nothing confirmed within stale_after; returns how many objects went."""
        return sum(self.sweep_steps(now, polls_since))

    def sweep_steps(
        self, now: float, polls_since: Mapping[str, float] | None = None
    ) -> Iterator[int]:
        """The sweep, in steps: each yield (what went since the last) is a point where the
        caller may let ingest run (20 k handles are tens of ms). It walks snapshots and skips
        what went meanwhile.

        Tombstones go sooner: one is needed only while something could still name its id as
        if alive, that is an Admin answer asked before the id went (``polls_since``: when
        each target's outstanding request was sent) or an event Janus queued just before
        (TOMBSTONE_MARGIN). At 20 k events/s, keeping them for stale_after was 116 k ids
        per kind."""
        horizon = now - self.limits.stale_after
        for server in list(self.servers.values()):
            yield from self._sweep_server(server, horizon)
            if (
                self.servers.get(server.name) is server
                and not server.configured
                and server.seen < horizon
                and not server.sessions
                and not server.rooms
            ):
                del self.servers[server.name]
                self.hooks.server_gone(server)
                yield 0
        self.expire_tombstones(now, polls_since)

    def expire_tombstones(self, now: float, polls_since: Mapping[str, float] | None = None) -> int:
        """Drop the tombstones nothing can still contradict; returns how many went. Cheap (it
        costs what expires), so it runs every second: between 15 s sweeps a tombstone lived
        10-25 s, and at 20 k events/s that window was most of the memory grown after start."""
        polls_since = polls_since or {}
        horizon = now - self.limits.stale_after
        expired = 0
        for server in self.servers.values():
            keep_from = max(horizon, min(now - TOMBSTONE_MARGIN, polls_since.get(server.name, now)))
            expired += expire_gone(server.gone_sessions, keep_from)
            expired += expire_gone(server.gone_handles, keep_from)
            expired += expire_gone(server.gone_publishers, keep_from)
        return expired

    def _sweep_server(self, server: Server, horizon: float) -> Iterator[int]:
        ops = self.ops
        dropped = 0
        # A polled target's list_sessions confirms each session every poll; its handles are
        # confirmed by list_handles in turn, and until then their live session vouches for them.
        polled = server.listed_at is not None and server.listed_at >= horizon
        for n, session in enumerate(list(server.sessions.values()), 1):
            if not n % SWEEP_PACE:
                yield dropped
                dropped = 0
            if server.sessions.get(session.session_id) is not session:
                continue  # went while ingest ran
            if polled and session.seen >= horizon:
                continue
            stale = [h.handle_id for h in session.handles.values() if h.seen < horizon]
            for handle_id in stale:
                if ops.remove_handle(server, session, handle_id, None, HANDLE_STALE):
                    ops.count_drop("publisher", "stale")
                    dropped += 1
            ops.count_drop("handle", "stale", len(stale))
            dropped += len(stale)
            if session.seen < horizon and not session.handles:
                server.sessions.pop(session.session_id)
                ops.count_drop("session", "stale")
                dropped += 1
        for n, publisher in enumerate(list(server.publishers.values()), 1):
            if not n % SWEEP_PACE:
                yield dropped
                dropped = 0
            if server.publishers.get((publisher.room, publisher.publisher_id)) is not publisher:
                continue
            alive = publisher.handle is not None and server.handle(publisher.handle) is not None
            if not alive and publisher.seen < horizon:
                ops.remove_publisher(server, publisher)
                ops.count_drop("publisher", "stale")
                dropped += 1
        for n, (room_id, room) in enumerate(list(server.rooms.items()), 1):
            if not n % SWEEP_PACE:
                yield dropped
                dropped = 0
            occupied = room_id in server.room_publishers or room_id in server.room_subscribers
            if server.rooms.get(room_id) is room and room.seen < horizon and not occupied:
                ops.remove_stale_room(server, room_id)
                ops.count_drop("room", "stale")
                dropped += 1
        yield dropped

    # --- views for metrics and the API -----------------------------------------------------

    def publisher_count(self) -> int:
        return sum(len(s.publishers) for s in self.servers.values())

    def tracked(self) -> dict[str, int]:
        servers = self.servers.values()
        return {
            "sessions": sum(len(s.sessions) for s in servers),
            "handles": self.handle_count,
            "publishers": self.publisher_count(),
            "subscribers": sum(len(s.subscribers) for s in servers),
            "rooms": sum(len(s.rooms) for s in servers),
        }


def membership_table(router: Router | None = None) -> Mapping[type, tuple[Handler, ...]]:
    """The dispatch table with the state model's own appliers (and whatever ``router``
    already holds from signals)."""
    router = router or Router()
    register(router)
    return router.table()
