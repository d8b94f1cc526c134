"""monitor.signals.bitrate on real Janus 1.1.2 captures: layers summed, counters monotonic
across a republish, over-cap, the handle_info fallback, and clean-up."""

from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest

from monitor.decode.polls import poll_event, read_handle
from monitor.decode.records import ConnectionEvent, Event, MediaStatsEvent
from monitor.decode.videoroom import PublisherGone
from monitor.metrics import build_registry, collectors
from monitor.signals import Signals
from monitor.signals.bitrate import over_cap
from monitor.state import RemovalHooks, Router, State, membership_table
from monitor.telemetry import Telemetry
from tests.conftest import ADMIN, events_of, metric_samples, sample, scenarios
from tests.test_state import (
    ALICE_10,
    PUB_HANDLE_10,
    PUB_SESSION_10,
    SERVER,
    SUB_HANDLE_10,
    SUB_SESSION_10,
    ev,
)

SIMULCAST_PUB = (102042271145511, 3366218357908294)
REUSE_ALICE = (1915254617353917, 8654044066383734)  # unpublishes, then publishes again


def watched(now: float = 1000.0) -> tuple[State, Signals, Telemetry]:
    telemetry, hooks, router, signals = Telemetry(), RemovalHooks(), Router(), Signals()
    signals.register(router, hooks)
    state = State(
        targets=(SERVER,), table=membership_table(router), hooks=hooks, telemetry=telemetry
    )
    return state, signals, telemetry


def feed(state: State, events: list[Event], now: float = 1000.0) -> None:
    for event in events:
        state.apply(event, now)


def latest_lastsec(events: list[Event], key: tuple[int, int], kind: str) -> dict[object, int]:
    """What Janus last said per (mid, layer) of one handle: the expected sum's terms."""
    latest: dict[object, int] = {}
    for event in events:
        if isinstance(event.body, MediaStatsEvent) and (event.session_id, event.handle_id) == key:
            for stat in event.body.stats:
                if stat.kind == kind and stat.bytes_received_lastsec is not None:
                    latest[(stat.mid, stat.layer)] = stat.bytes_received_lastsec
    return latest


def until_hangup(events: list[Event], key: tuple[int, int]) -> list[Event]:
    """A scenario's events up to (not including) the hangup of one handle."""
    for index, event in enumerate(events):
        if (
            isinstance(event.body, ConnectionEvent)
            and event.body.connection == "hangup"
            and ((event.session_id, event.handle_id) == key)
        ):
            return events[:index]
    return events


def test_simulcast_layers_are_summed_into_video() -> None:
    """60-simulcast-chromium: Chromium's three layers (video, video-sim1, video-sim2 on mid 1,
    each in its own event) add up to the publisher's video bitrate."""
    events = events_of("60-simulcast-chromium")
    # Up to the first moment all three layers carry media (before the cap stops two of them).
    cut = next(
        i for i in range(len(events))
        if len(latest := latest_lastsec(events[:i], SIMULCAST_PUB, "video")) == 3
        and all(latest.values())
    )  # fmt: skip
    state, signals, _ = watched()
    feed(state, events[:cut])
    expected = latest_lastsec(events[:cut], SIMULCAST_PUB, "video")
    assert {layer for _, layer in expected} == {0, 1, 2}
    media = signals.bitrate.of(state.servers[SERVER], SIMULCAST_PUB)
    assert media is not None
    assert media.bitrate("video") == 8 * sum(expected.values())
    assert media.bitrate("video") > 8 * max(expected.values())  # more than any one layer


def test_an_over_cap_publisher_in_10_media() -> None:
    """alice publishes about 265 kbps into room 4321 (cap 128 kbps): until she is kicked, her
    video bitrate is Janus's bytes-received-lastsec x 8, and over_cap is 1 at tolerance 1.25."""
    events = events_of("10-media")
    events = events[: next(i for i, e in enumerate(events) if isinstance(e.body, PublisherGone))]
    state, signals, telemetry = watched()
    feed(state, events)
    registry = build_registry(
        collectors(state, telemetry, lambda: True, lambda: 1000.0, signals=signals)
    )
    samples = metric_samples(generate_latest(registry).decode())
    labels = {"server": SERVER, "room": "4321", "publisher": ALICE_10}
    expected = 8 * sum(latest_lastsec(events, (PUB_SESSION_10, PUB_HANDLE_10), "video").values())
    video = sample(
        samples, "janus_videoroom_publisher_bitrate_bits_per_second", **labels, kind="video"
    )
    assert video == expected and 200_000 < video < 400_000
    assert sample(samples, "janus_videoroom_publisher_over_cap", **labels) == 1
    received = "janus_videoroom_publisher_received_bytes_total"
    assert (sample(samples, received, **labels, kind="video") or 0) > 100_000


def test_received_bytes_stay_monotonic_across_a_republish() -> None:
    """40-reuse: alice unpublishes (hangup "Close PC") and publishes again on the same handle;
    Janus's counters restart at 0 but the exported total never goes back."""
    state, signals, _ = watched()
    totals: list[int] = []
    restarted_at = None
    for event in events_of("40-reuse"):
        state.apply(event, 1000.0)
        media = signals.bitrate.of(state.servers[SERVER], REUSE_ALICE)
        if media is not None and "video" in media.totals:
            totals.append(media.totals["video"])
        if isinstance(event.body, ConnectionEvent) and event.body.connection == "hangup":
            restarted_at = len(totals)
    assert restarted_at is not None and 0 < restarted_at < len(totals)
    assert totals == sorted(totals)  # never decreases
    assert totals[-1] > totals[restarted_at - 1]  # the second PeerConnection added to it


def test_handle_info_is_the_fallback_source() -> None:
    """A full handle_info (the poller's, when events are late) gives the same per-layer rates."""
    state, signals, _ = watched()
    state.apply(
        ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, *SIMULCAST_PUB), 1.0
    )
    reply = json.loads(
        (ADMIN / "60-simulcast-chromium" / "001-handle_info-pub-before-cap.json").read_text()
    )
    info = reply["response"]["info"]
    state.apply(poll_event(SERVER, read_handle(*SIMULCAST_PUB, info, asked_at=2.0)), 2.0)
    media = signals.bitrate.of(state.servers[SERVER], SIMULCAST_PUB)
    assert media is not None
    inbound = info["webrtc"]["media"]["1"]["stats"]["in"]
    layers = [inbound["bytes_lastsec"]] + [
        inbound[f"video-simulcast-{n}"]["bytes_lastsec"] for n in (1, 2)
    ]
    assert media.bitrate("video") == 8 * sum(layers)


def test_data_goes_with_the_handle_and_the_server() -> None:
    """Detaching the handle drops its data; a Janus restart drops the server's."""
    state, signals, _ = watched()
    feed(state, until_hangup(events_of("10-media"), (PUB_SESSION_10, PUB_HANDLE_10)))
    server = state.servers[SERVER]
    assert signals.bitrate.of(server, (PUB_SESSION_10, PUB_HANDLE_10)) is not None
    state.apply(ev({"name": "detached"}, 2, PUB_SESSION_10, PUB_HANDLE_10), 1001.0)
    assert signals.bitrate.of(server, (PUB_SESSION_10, PUB_HANDLE_10)) is None
    state, signals, _ = watched()  # again, and Janus restarts with the publisher there
    feed(state, until_hangup(events_of("10-media"), (PUB_SESSION_10, PUB_HANDLE_10)))
    assert signals.bitrate.handles
    state.apply(ev({"status": "started"}, 256, subtype=1), 1002.0)
    assert signals.bitrate.handles == {}


@pytest.mark.parametrize(
    ("bitrate", "cap", "over"),
    [(300_000, 128_000, True), (150_000, 128_000, False), (300_000, 0, False),
     (None, 128_000, False), (300_000, None, False), (160_001, 128_000, True)],
)  # fmt: skip
def test_over_cap_rule(bitrate: float | None, cap: int | None, over: bool) -> None:
    """Above cap x 1.25 only; an uncapped (0) or unknown cap, or no bitrate, is never over."""
    assert over_cap(bitrate, cap, 1.25) is over


def test_a_subscribers_stats_keep_no_ingress_data() -> None:
    """A subscriber's inbound stats (RTCP only) keep nothing in the bitrate signal, while its
    publisher's do."""
    state, signals, _ = watched()
    feed(state, until_hangup(events_of("10-media"), (PUB_SESSION_10, PUB_HANDLE_10)))
    server = state.servers[SERVER]
    handle = server.handle((SUB_SESSION_10, SUB_HANDLE_10))
    assert handle is not None and handle.role == "subscriber"
    assert handle.media  # it had stats: state keeps them, the bitrate signal does not
    assert signals.bitrate.of(server, (SUB_SESSION_10, SUB_HANDLE_10)) is None
    assert signals.bitrate.of(server, (PUB_SESSION_10, PUB_HANDLE_10)) is not None


def test_each_media_record_holds_the_handle_state_tracks_under_its_key() -> None:
    """After every event of every scenario, then a core restart, each media record's handle
    is the object state holds under its key (the scrape trusts it instead of looking up)."""
    checked = 0
    for name in scenarios():
        state, signals, _ = watched()
        for at, event in enumerate(events_of(name)):
            state.apply(event, 1000.0 + at)
            for (server, session_id, handle_id), media in signals.bitrate.handles.items():
                assert state.servers[server].handle((session_id, handle_id)) is media.handle
                checked += 1
        state.apply(ev({"name": "started"}, 256, subtype=1), 5000.0)
        assert signals.bitrate.handles == {}
    assert checked > 100
