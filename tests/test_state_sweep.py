"""The sweep in steps: pause points for ingest, and what goes meanwhile is skipped."""

from __future__ import annotations

from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.state import Limits, State
from monitor.state.store import SWEEP_PACE

SERVER = "janus-lab-1"


def created(session_id: int) -> dict[str, object]:
    return {"emitter": SERVER, "type": 1, "session_id": session_id, "event": {"name": "created"}}


def test_a_large_sweep_pauses_and_skips_what_went_between_steps() -> None:
    """3 x SWEEP_PACE stale sessions: the sweep yields between slices, a session destroyed by
    an event while it paused is not counted again, and every other one is dropped."""
    state = State(Limits(stale_after=10.0), targets=(SERVER,))
    count = 3 * SWEEP_PACE
    for session_id in range(1, count + 1):
        state.apply(decode_event(created(session_id), DecodeNotes()), 100.0)
    steps = state.sweep_steps(200.0)
    dropped = next(steps)  # paused after the first slice
    gone = {"emitter": SERVER, "type": 1, "session_id": count, "event": {"name": "destroyed"}}
    state.apply(decode_event(gone, DecodeNotes()), 200.0)
    yields = 1
    for went in steps:
        dropped += went
        yields += 1
    assert yields >= 3
    assert dropped == count - 1
    assert state.servers[SERVER].sessions == {}
    assert state.telemetry.state_dropped.get(("session", "stale")) == count - 1
