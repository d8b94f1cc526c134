"""monitor.state.dispatch: several handlers per body type, in stage order, through one door."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.decode.records import CandidateEvent, ConnectionEvent, Event, MediaStatsEvent
from monitor.state import Ops, Router, Server, Stage, State, membership_table
from tests.test_state import SERVER, ev, replay

Seen = list[tuple[str, Any]]


def recorder(name: str, seen: Seen, read: Any = None) -> Any:
    def handler(ops: Ops, server: Server, event: Event, body: Any, now: float) -> None:
        seen.append((name, read(ops, server, event) if read else type(body).__name__))

    return handler


def test_handlers_run_by_stage_then_registration_order() -> None:
    """BEFORE handlers see the state before membership changes it, AFTER ones after it; two
    handlers of one stage run in the order they registered, whatever order the stages came in."""
    seen: Seen = []

    def media_of(ops: Ops, server: Server, event: Event) -> int:
        handle = server.handle((event.session_id or 0, event.handle_id or 0))
        return len(handle.media) if handle else -1

    router = Router()
    router.register(ConnectionEvent, Stage.AFTER, recorder("after", seen, media_of))
    router.register(ConnectionEvent, Stage.BEFORE, recorder("before-1", seen, media_of))
    router.register(ConnectionEvent, Stage.BEFORE, recorder("before-2", seen, media_of))
    state = State(targets=(SERVER,), table=membership_table(router))
    stats = [{"mid": "0", "media": "audio", "bytes-received": 10}]
    state.apply(ev(stats, 32, 1, 2, subtype=3), 1.0)
    state.apply(ev({"connection": "hangup", "reason": "Close PC"}, 16, 1, 2, subtype=6), 2.0)
    # The hangup clears the handle's media: only the BEFORE handlers still see the counter.
    assert seen == [("before-1", 1), ("before-2", 1), ("after", 0)]


def test_a_type_without_membership_applier_still_confirms_its_handle() -> None:
    """A signal-only body type gets the default membership step (touch): the handle exists."""
    seen: Seen = []
    router = Router()
    router.register(CandidateEvent, Stage.AFTER, recorder("ice", seen))
    state = State(targets=(SERVER,), table=membership_table(router))
    candidate = {"local-candidate": "1 1 udp 2015363583 127.0.0.1 33162 typ host"}
    state.apply(ev(candidate, 16, 5, 6, subtype=2), 1.0)
    assert seen == [("ice", "CandidateEvent")]
    assert state.servers[SERVER].handle((5, 6)) is not None


def test_a_second_membership_applier_is_refused() -> None:
    """Two MEMBERSHIP appliers for one type is a wiring bug, not a silent overwrite."""
    router = Router()
    membership_table(router)
    with pytest.raises(ValueError, match="MediaStatsEvent already has a membership applier"):
        router.register(MediaStatsEvent, Stage.MEMBERSHIP, recorder("x", []))


def test_a_failing_handler_costs_its_event_not_the_batch() -> None:
    """A handler that raises fails that event (reported), and later events still apply."""

    def broken(ops: Ops, server: Server, event: Event, body: Any, now: float) -> None:
        raise RuntimeError("signal bug")

    router = Router()
    router.register(CandidateEvent, Stage.BEFORE, broken)
    state = State(targets=(SERVER,), table=membership_table(router))
    candidate = ev({"local-candidate": "1 1 udp 1 127.0.0.1 1 typ host"}, 16, 5, 6, subtype=2)
    created = ev({"name": "created"}, 1, 7)
    failed = state.apply_all([candidate, created], 1.0)
    assert [(event.type, str(error)) for event, error in failed] == [(16, "signal bug")]
    assert 7 in state.servers[SERVER].sessions


def test_the_default_table_replays_every_scenario_like_before() -> None:
    """State() without a table uses the membership table: 10-media ends with its publisher."""
    assert list(replay("10-media", upto="00033").servers[SERVER].publishers)
