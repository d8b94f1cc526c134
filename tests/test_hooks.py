"""monitor.state.hooks: every removal path calls the hooks, once per object."""

from __future__ import annotations

from monitor.decode.polls import PolledHandles, PolledParticipants, PolledSessions, poll_event
from monitor.decode.records import Event
from monitor.state import RemovalHooks, Server, State
from monitor.state.model import Handle, Publisher
from tests.test_state import SERVER, ev, replay


class Spy:
    def __init__(self, hooks: RemovalHooks) -> None:
        self.handles: list[tuple[tuple[int, int], str]] = []
        self.publishers: list[tuple[str, str]] = []
        self.rooms: list[str] = []
        self.resets: list[str] = []
        hooks.on_handle_removed(self.handle)
        hooks.on_publisher_removed(self.publisher)
        hooks.on_room_removed(self.room)
        hooks.on_server_reset(self.reset)

    def handle(self, server: Server, handle: Handle, reason: str) -> None:
        self.handles.append(((handle.session_id, handle.handle_id), reason))

    def publisher(self, server: Server, publisher: Publisher) -> None:
        self.publishers.append((publisher.room, publisher.publisher_id))

    def room(self, server: Server, room: str) -> None:
        self.rooms.append(room)

    def reset(self, server: Server) -> None:
        self.resets.append(server.name)


def watched() -> tuple[State, Spy]:
    hooks = RemovalHooks()
    spy = Spy(hooks)
    return State(targets=(SERVER,), hooks=hooks), spy


def joined(session: int, handle: int, room: int, publisher: int) -> Event:
    data = {"event": "joined", "room": room, "id": publisher, "display": "x"}
    return ev({"plugin": "janus.plugin.videoroom", "data": data}, 64, session, handle)


def test_events_detach_and_destroy_call_the_hooks() -> None:
    """detached, then a session destroyed with its handles: each handle once, reason
    detached, and the publisher that went with one."""
    state, spy = watched()
    state.apply(joined(1, 10, 1234, 7), 1.0)
    state.apply(ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, 1, 11), 1.0)
    state.apply(ev({"name": "detached"}, 2, 1, 11), 2.0)
    state.apply(ev({"name": "destroyed"}, 1, 1), 3.0)
    assert spy.handles == [((1, 11), "detached"), ((1, 10), "detached")]
    assert spy.publishers == [("1234", "7")]


def test_the_sweep_calls_the_hooks_with_reason_stale() -> None:
    """Handles, publishers and rooms nothing confirmed within stale_after go with hooks."""
    state, spy = watched()
    state.apply(joined(1, 10, 1234, 7), 1.0)
    state.sweep(1.0 + state.limits.stale_after + 1)
    assert spy.handles == [((1, 10), "stale")]
    assert spy.publishers == [("1234", "7")]
    state.sweep(1.0 + 2 * state.limits.stale_after + 2)
    assert spy.rooms == ["1234"]


def test_reconcile_calls_the_hooks_with_reason_reconcile() -> None:
    """What the Admin API no longer lists (handles, sessions, rooms) goes with hooks."""
    state, spy = watched()
    state.apply(joined(1, 10, 1234, 7), 1.0)
    state.apply(ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, 2, 20), 1.0)
    state.apply(poll_event(SERVER, PolledHandles(1, frozenset(), asked_at=5.0)), 5.0)
    assert spy.handles == [((1, 10), "reconcile")]
    state.apply(poll_event(SERVER, PolledSessions(frozenset(), asked_at=6.0)), 6.0)
    assert spy.handles[-1] == ((2, 20), "reconcile")
    state.apply(poll_event(SERVER, PolledParticipants("1234", False, (), asked_at=7.0)), 7.0)
    assert spy.rooms == ["1234"]


def test_a_janus_restart_resets_the_server_once() -> None:
    """A core `started` drops everything of the old process with one server reset, not a
    call per handle."""
    state, spy = watched()
    replay("10-media", upto="00033", state=state)
    state.apply(ev({"status": "started"}, 256, subtype=1), 2000.0)
    assert spy.resets == [SERVER]
    assert spy.handles == []


def test_a_failing_hook_does_not_stop_the_removal() -> None:
    """A hook that raises is logged; the handle is still removed and later hooks still run."""
    hooks = RemovalHooks()

    def broken(server: Server, handle: Handle, reason: str) -> None:
        raise RuntimeError("signal bug")

    hooks.on_handle_removed(broken)
    spy = Spy(hooks)
    state = State(targets=(SERVER,), hooks=hooks)
    state.apply(ev({"name": "attached", "plugin": "janus.plugin.echotest"}, 2, 1, 10), 1.0)
    state.apply(ev({"name": "detached"}, 2, 1, 10), 2.0)
    assert state.servers[SERVER].handle((1, 10)) is None
    assert spy.handles == [((1, 10), "detached")]
