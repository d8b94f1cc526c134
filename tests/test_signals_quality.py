"""monitor.signals.quality: downstream impact per room, and media quality per server, on the
10-media capture and on subscribers made to suffer."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from monitor.metrics import build_registry, collectors
from monitor.signals import Signals
from monitor.state import RemovalHooks, Router, State, membership_table
from monitor.telemetry import Telemetry
from tests.conftest import events_of, metric_samples, sample
from tests.test_state import SERVER, SUB_HANDLE_10, SUB_SESSION_10, ev

VIDEOROOM = "janus.plugin.videoroom"
ROOM = {"server": SERVER, "room": "4321"}


def watched() -> tuple[State, Signals, Telemetry]:
    telemetry, hooks, router, signals = Telemetry(), RemovalHooks(), Router(), Signals()
    signals.register(router, hooks)
    state = State(
        targets=(SERVER,), table=membership_table(router), hooks=hooks, telemetry=telemetry
    )
    return state, signals, telemetry


def scrape(state: State, signals: Signals, telemetry: Telemetry) -> Any:
    registry = build_registry(collectors(state, telemetry, lambda: True, signals=signals))
    return metric_samples(generate_latest(registry).decode())


def test_a_healthy_subscriber_in_10_media() -> None:
    """Sent about 260 kbps against a REMB of 300-399 kbps, link quality 100, no loss:
    nobody degraded, loss ratio 0; RTT and link quality distributions filled."""
    state, signals, telemetry = watched()
    for event in events_of("10-media")[:100]:  # before alice is kicked
        state.apply(event, 1000.0)
    samples = scrape(state, signals, telemetry)
    assert sample(samples, "janus_videoroom_room_subscribers_degraded", **ROOM) == 0
    assert sample(samples, "janus_videoroom_room_subscriber_loss_ratio_max", **ROOM) == 0
    assert (sample(samples, "janus_media_rtt_seconds_count", server=SERVER) or 0) > 0
    link = sample(samples, "janus_media_link_quality_count", server=SERVER, direction="out")
    assert link is not None and link > 0


def test_a_subscriber_left_without_a_feed_is_not_degraded() -> None:
    """After the kick its link quality falls to 67 then 30 with nothing sent: not counted."""
    state, signals, telemetry = watched()
    for event in events_of("10-media"):
        state.apply(event, 1000.0)
        if event.handle_id == SUB_HANDLE_10 and event.type == 32:
            samples = scrape(state, signals, telemetry)
            assert sample(samples, "janus_videoroom_room_subscribers_degraded", **ROOM) in (0, None)


def stats(sent: int, packets: int, lost: int, remb: int | None = None, quality: int = 100) -> Any:
    entry: dict[str, Any] = {
        "mid": "0", "mindex": 0, "media": "video", "bytes-sent-lastsec": sent,
        "packets-sent": packets, "lost-by-remote": lost, "out-media-link-quality": quality,
    }  # fmt: skip
    if remb is not None:
        entry["remb-bitrate"] = remb
    return ev([entry], 32, SUB_SESSION_10, SUB_HANDLE_10, subtype=3)


def subscribed() -> tuple[State, Signals, Telemetry]:
    """A subscriber to alice in room 4321, from 10-media up to its first stats."""
    state, signals, telemetry = watched()
    for event in events_of("10-media")[:64]:
        state.apply(event, 1000.0)
    return state, signals, telemetry


def test_sent_over_its_remb_is_degraded() -> None:
    """30 KB/s (240 kbps) to a subscriber whose REMB says 100 kbps: degraded."""
    state, signals, telemetry = subscribed()
    state.apply(stats(30_000, 1000, 0, remb=100_000), 1000.0)
    samples = scrape(state, signals, telemetry)
    assert sample(samples, "janus_videoroom_room_subscribers_degraded", **ROOM) == 1


def test_low_link_quality_counts_once_it_moved() -> None:
    """Link quality 0 (no receiver reports yet) is not low; 50 after it moved is."""
    state, signals, telemetry = subscribed()
    state.apply(stats(30_000, 100, 0, quality=0), 1000.0)
    assert (
        sample(
            scrape(state, signals, telemetry), "janus_videoroom_room_subscribers_degraded", **ROOM
        )
        == 0
    )
    state.apply(stats(30_000, 200, 0, quality=100), 1001.0)
    state.apply(stats(30_000, 300, 0, quality=50), 1002.0)
    assert (
        sample(
            scrape(state, signals, telemetry), "janus_videoroom_room_subscribers_degraded", **ROOM
        )
        == 1
    )


def test_loss_ratio_over_the_window() -> None:
    """lost-by-remote 0 -> 100 while packets-sent went 1000 -> 2000 within 5 s: 0.1; the
    packets lost to peers are counted per server."""
    state, signals, telemetry = subscribed()
    state.apply(stats(30_000, 1000, 0), 1000.0)
    state.apply(stats(30_000, 2000, 100), 1003.0)
    samples = scrape(state, signals, telemetry)
    assert sample(samples, "janus_videoroom_room_subscriber_loss_ratio_max", **ROOM) == 0.1
    assert sample(samples, "janus_media_packets_lost_total", server=SERVER, direction="out") == 100


def test_media_that_stops_is_counted_and_data_goes_with_the_handle() -> None:
    """receiving: false is counted by kind; detaching the subscriber drops its data."""
    state, signals, telemetry = subscribed()
    state.apply(stats(30_000, 1000, 0), 1000.0)
    stopped = ev({"media": "video", "mid": "0", "receiving": False}, 32, SUB_SESSION_10,
                 SUB_HANDLE_10, subtype=1)  # fmt: skip
    state.apply(stopped, 1001.0)
    samples = scrape(state, signals, telemetry)
    assert sample(samples, "janus_media_receiving_stopped_total", server=SERVER, kind="video") == 1
    state.apply(ev({"name": "detached"}, 2, SUB_SESSION_10, SUB_HANDLE_10), 1002.0)
    assert signals.quality.of(state.servers[SERVER], (SUB_SESSION_10, SUB_HANDLE_10)) is None


def test_the_kept_loss_and_degraded_agree_with_their_methods_after_every_report() -> None:
    """Downstream.loss and is_degraded (what the scrape reads) equal loss_ratio() and
    degraded() after each stats report of 10-media and of a suffering subscriber."""
    state, signals, _ = watched()
    suffering = [stats(30_000, 1000, 0, remb=100_000), stats(30_000, 2000, 100, quality=50),
                 stats(1_000, 2500, 100, remb=900_000)]  # fmt: skip
    reports = [*events_of("10-media")[:64], *suffering]
    seen: set[tuple[bool, bool]] = set()  # (loss known, degraded): both ways must be met
    for at, event in enumerate(reports):
        state.apply(event, 1000.0 + at)
        for down in signals.quality.downstream.values():
            assert (down.loss, down.is_degraded) == (down.loss_ratio(), down.degraded())
            seen.add((down.loss is not None, down.is_degraded))
    assert {(True, True), (True, False)} <= seen
