"""monitor.signals.reuse on real captures (40-reuse, 10-media) and on each pattern, with the
traps that must not count."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from monitor.decode.polls import PolledHandle, poll_event
from monitor.decode.records import Event
from monitor.metrics import build_registry, collectors
from monitor.signals import Signals
from monitor.state import RemovalHooks, Router, State, membership_table
from monitor.telemetry import Telemetry
from tests.conftest import events_of, metric_samples, sample
from tests.test_state import SERVER, VIEWER_KEY_40, ev

VIDEOROOM = "janus.plugin.videoroom"


def watched() -> tuple[State, Signals, Telemetry]:
    telemetry, hooks, router, signals = Telemetry(), RemovalHooks(), Router(), Signals()
    signals.register(router, hooks)
    state = State(
        targets=(SERVER,), table=membership_table(router), hooks=hooks, telemetry=telemetry
    )
    return state, signals, telemetry


def counts(signals: Signals) -> dict[str, int]:
    return {pattern: n for (_, _, pattern), n in signals.reuse.counts.items()}


def vr(data: dict[str, Any], session: int, handle: int) -> Event:
    return ev({"plugin": VIDEOROOM, "data": data}, 64, session, handle)


def joined(room: int, publisher: int, session: int = 1, handle: int = 10) -> Event:
    return vr({"event": "joined", "room": room, "id": publisher, "display": "p"}, session, handle)


def subscribing(room: int, feeds: list[int], session: int = 1, handle: int = 10,
                update: bool = False) -> Event:  # fmt: skip
    streams = [{"mid": str(i), "type": "video", "feed_id": f, "active": True}
               for i, f in enumerate(feeds)]  # fmt: skip
    return vr({"event": "updated" if update else "subscribing", "room": room,
               "streams": streams}, session, handle)  # fmt: skip


def test_40_reuse_counts_one_second_feed_and_nothing_else() -> None:
    """The viewer's `subscribe` to Bob on its handle is second_feed; the refused joins (425),
    the republish on one handle and the publisher-shaped `updated` count nothing."""
    state, signals, _ = watched()
    events = events_of("40-reuse")
    for event in events[:100]:  # past the viewer's subscribe to Bob (event 93)
        state.apply(event, 1000.0)
    assert signals.reuse.reused(state.servers[SERVER], VIEWER_KEY_40) == {"second_feed"}
    for event in events[100:]:
        state.apply(event, 1000.0)
    assert counts(signals) == {"second_feed": 1}
    assert signals.reuse.handles == {} == {**dict.fromkeys(signals.reuse.flagged)}  # all gone


def test_a_clean_media_run_counts_no_reuse() -> None:
    """10-media: one handle per purpose (its refused rejoin leaves no event): zero."""
    state, signals, _ = watched()
    for event in events_of("10-media"):
        state.apply(event, 1000.0)
    assert counts(signals) == {}


def test_each_pattern_when_events_show_it() -> None:
    """role_change, rejoin and second_room, each counted once per handle, on the handle."""
    state, signals, telemetry = watched()
    state.apply(ev({"name": "attached", "plugin": VIDEOROOM}, 2, 1, 10), 1.0)
    state.apply(joined(100, 7), 1.0)
    state.apply(subscribing(100, [8]), 2.0)  # the publisher's handle subscribes: role_change
    state.apply(ev({"name": "attached", "plugin": VIDEOROOM}, 2, 2, 20), 1.0)
    state.apply(joined(100, 9, 2, 20), 3.0)
    state.apply(vr({"event": "leaving", "room": 100, "id": 9}, 2, 20), 4.0)
    state.apply(joined(100, 9, 2, 20), 5.0)  # back in after leaving: rejoin
    state.apply(joined(200, 9, 2, 20), 6.0)  # and in another room: second_room
    state.apply(joined(200, 9, 2, 20), 7.0)  # the same again: counted once
    assert counts(signals) == {"role_change": 1, "rejoin": 1, "second_room": 1}
    registry = build_registry(collectors(state, telemetry, lambda: True, signals=signals))
    samples = metric_samples(generate_latest(registry).decode())
    labels = {"server": SERVER, "plugin": VIDEOROOM}
    assert sample(samples, "janus_handle_reuse_total", **labels, pattern="rejoin") == 1
    assert sample(samples, "janus_handles_reused", **labels) == 2
    state.apply(ev({"name": "detached"}, 2, 2, 20), 8.0)
    samples = metric_samples(generate_latest(registry).decode())
    assert sample(samples, "janus_handles_reused", **labels) == 1  # the gauge follows handles
    assert sample(samples, "janus_handle_reuse_total", **labels, pattern="rejoin") == 1
    assert signals.reuse.flagged == {(SERVER, 1, 10)}  # what the gauge walks: the flagged only
    state.apply(ev({"name": "started"}, 256, subtype=1), 9.0)  # Janus restarted
    assert signals.reuse.flagged == set()


def test_a_poll_shows_a_rejoin_events_missed() -> None:
    """handle_info naming another publisher id on a publisher handle is a rejoin."""
    state, signals, _ = watched()
    state.apply(joined(100, 7), 1.0)
    polled = PolledHandle(1, 10, exists=True, asked_at=2.0, plugin=VIDEOROOM,
                          role="publisher", room="100", publisher_id="70")  # fmt: skip
    state.apply(poll_event(SERVER, polled), 2.0)
    assert counts(signals) == {"rejoin": 1}


def test_an_update_never_makes_a_publisher_handle_a_subscriber() -> None:
    """A subscriber-shaped `updated` with a handle's ids does not make it a subscriber, even
    before anything told its role (it was made a subscriber before this fix), nor count."""
    state, signals, _ = watched()
    state.apply(ev({"name": "attached", "plugin": VIDEOROOM}, 2, 1, 10), 1.0)
    state.apply(subscribing(100, [8], update=True), 2.0)
    server = state.servers[SERVER]
    assert server.subscribers == {}
    handle = server.handle((1, 10))
    assert handle is not None and handle.role is None
    assert counts(signals) == {}
