"""Tombstones of destroyed ids: kept while a poll answer or a queued event could still name
them, not for stale_after."""

from __future__ import annotations

from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.decode.polls import PolledSessions, poll_event
from monitor.state import Limits, State
from monitor.state.store import TOMBSTONE_MARGIN
from tests.conftest import FakeClock
from tests.fakes import FakeAdmin
from tests.test_poller import make_poller

SERVER = "janus-lab-1"


def session(name: str, session_id: int) -> dict[str, object]:
    return {"emitter": SERVER, "type": 1, "session_id": session_id, "event": {"name": name}}


def destroyed_at(state: State, at: float, session_id: int = 7) -> None:
    for name, when in (("created", at - 1.0), ("destroyed", at)):
        state.apply(decode_event(session(name, session_id), DecodeNotes()), when)


def test_a_tombstone_goes_after_the_margin_not_after_stale_after() -> None:
    """With no poll outstanding, a destroyed session's tombstone is kept for TOMBSTONE_MARGIN
    and gone at the first sweep after it, far sooner than stale_after (60 s)."""
    state = State(Limits(stale_after=60.0), targets=(SERVER,))
    destroyed_at(state, 100.0)
    server = state.servers[SERVER]
    state.sweep(100.0 + TOMBSTONE_MARGIN - 1)
    assert 7 in server.gone_sessions
    state.sweep(100.0 + TOMBSTONE_MARGIN + 1)
    assert 7 not in server.gone_sessions


def test_a_poll_asked_before_the_destroy_keeps_the_tombstone_until_its_answer() -> None:
    """A list_sessions sent before the destroy and still out keeps the tombstone past the
    margin; its answer (still listing the id) does not bring the session back."""
    state = State(Limits(stale_after=60.0), targets=(SERVER,))
    destroyed_at(state, 100.0)
    server = state.servers[SERVER]
    late = 100.0 + 3 * TOMBSTONE_MARGIN
    state.sweep(late, {SERVER: 99.5})
    assert 7 in server.gone_sessions
    state.apply(poll_event(SERVER, PolledSessions(frozenset({7}), asked_at=99.5)), late)
    assert 7 not in server.sessions
    state.sweep(late + 1)
    assert 7 not in server.gone_sessions


def test_a_late_event_within_the_margin_does_not_bring_a_session_back() -> None:
    """An event of a destroyed session arriving within the margin is refused by its tombstone."""
    state = State(Limits(stale_after=60.0), targets=(SERVER,))
    destroyed_at(state, 100.0)
    state.sweep(100.0 + TOMBSTONE_MARGIN / 2)
    late = {"emitter": SERVER, "type": 2, "session_id": 7, "handle_id": 8,
            "event": {"name": "attached", "plugin": "janus.plugin.videoroom"}}  # fmt: skip
    state.apply(decode_event(late, DecodeNotes()), 100.0 + TOMBSTONE_MARGIN / 2)
    assert 7 not in state.servers[SERVER].sessions


async def test_the_poller_tells_when_its_outstanding_request_was_sent(clock: FakeClock) -> None:
    """While list_sessions is out, the poller says when it was sent; once applied, nothing."""
    seen: list[float | None] = []

    class Watching(FakeAdmin):
        async def list_sessions(self) -> list[int]:
            seen.append(poller.in_flight_since)
            return await super().list_sessions()

    admin = Watching(clock)
    poller = make_poller(clock, admin)
    await poller.poll()
    assert seen and seen[0] is not None and seen[0] <= clock.now
    assert poller.in_flight_since is None


def test_tombstones_expire_between_sweeps_and_respect_an_outstanding_poll() -> None:
    """expire_tombstones (run every second) drops a tombstone once past the margin, without a
    sweep, but keeps it while a poll asked before the destroy is out."""
    state = State(Limits(stale_after=60.0), targets=(SERVER,))
    destroyed_at(state, 100.0)
    server = state.servers[SERVER]
    assert state.expire_tombstones(100.0 + TOMBSTONE_MARGIN - 0.5) == 0
    assert state.expire_tombstones(100.0 + TOMBSTONE_MARGIN + 0.5, {SERVER: 99.0}) == 0
    assert 7 in server.gone_sessions
    assert state.expire_tombstones(100.0 + TOMBSTONE_MARGIN + 0.5) == 1
    assert 7 not in server.gone_sessions
