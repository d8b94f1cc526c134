"""The state model, driven by the real Janus 1.1.2 event captures."""

from __future__ import annotations

from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.decode.records import CoreEvent, Event, HandleEvent, MediaStatsEvent, SessionEvent
from monitor.state import PUBLISHER, SUBSCRIBER, Limits, State
from tests.conftest import FakeClock, body_paths, events_of, items_of, scenarios

SERVER = "janus-lab-1"
ALICE_10 = "2244074596607377"
PUB_SESSION_10, PUB_HANDLE_10 = 3647527005210999, 4725100285792786
SUB_SESSION_10, SUB_HANDLE_10 = 7152267511538354, 5637909923716478

ALICE_40, BOB_40 = "3642445533640425", "8003022499398413"
ALICE_KEY_40 = (1915254617353917, 8654044066383734)
VIEWER_KEY_40 = (6185532133746521, 5527804576676429)
ECHO_KEY_40 = (1915254617353917, 934111972568205)


def replay(scenario: str, upto: str | None = None, state: State | None = None) -> State:
    state = state or State(targets=(SERVER,))
    for event in events_of(scenario, upto):
        state.apply(event, 1000.0)
    return state


def ev(
    body: object, type_: int, session: int | None = None, handle: int | None = None, **extra: object
) -> Event:
    raw: dict[str, object] = {"emitter": SERVER, "type": type_, "timestamp": 1, "event": body}
    if session is not None:
        raw["session_id"] = session
    if handle is not None:
        raw["handle_id"] = handle
    raw.update(extra)
    return decode_event(raw, DecodeNotes())


def test_every_fixture_scenario_applies_without_error() -> None:
    """Every captured webhook body of every scenario goes through decoder and state cleanly."""
    applied = 0
    for scenario in scenarios():
        state = State(targets=(SERVER,))
        for path in body_paths(scenario):
            for item in items_of(path):
                state.apply(decode_event(item, DecodeNotes()), 1000.0)
                applied += 1
    assert applied == 3018  # 2713 + the 305 events of 60-simulcast-chromium


def test_media_publisher_in_room_4321() -> None:
    """In 10-media, alice publishes in room 4321 from the handle that joined."""
    state = replay("10-media", upto="00033")
    server = state.servers[SERVER]
    assert list(server.publishers) == [("4321", ALICE_10)]
    alice = server.publishers[("4321", ALICE_10)]
    assert alice.display == "alice"
    assert alice.publishing is True
    assert alice.handle == (PUB_SESSION_10, PUB_HANDLE_10)
    assert alice.opaque_id == "lab-publisher-1"
    assert [(s.mid, s.kind, s.codec) for s in alice.streams] == [
        ("0", "video", "vp8"),
        ("1", "audio", "opus"),
    ]
    handle = server.handle((PUB_SESSION_10, PUB_HANDLE_10))
    assert handle is not None
    assert (handle.role, handle.room, handle.publisher_id) == (PUBLISHER, "4321", ALICE_10)
    assert handle.plugin == "janus.plugin.videoroom"


def test_media_subscriber_feed() -> None:
    """In 10-media, the subscriber handle receives alice's feed in room 4321, and is up."""
    state = replay("10-media", upto="00034")
    server = state.servers[SERVER]
    subscriber = server.subscribers[(SUB_SESSION_10, SUB_HANDLE_10)]
    assert subscriber.room == "4321"
    assert subscriber.feed_ids == {ALICE_10}
    assert subscriber.feeds == {("0", ALICE_10), ("1", ALICE_10)}
    assert subscriber.pc_up is True
    handle = server.handle((SUB_SESSION_10, SUB_HANDLE_10))
    assert handle is not None and handle.role == SUBSCRIBER


def test_room_cap_is_inferred_from_the_first_configured_after_join() -> None:
    """Room 4321 was created with bitrate 128000; the publish's `configured` reveals it."""
    room = replay("10-media", upto="00012").servers[SERVER].rooms["4321"]
    assert (room.bitrate_cap, room.cap_source) == (128000, "event")
    assert room.max_publishers is None  # only a poll can tell


def test_kicked_without_context_resolves_through_the_room_id_map() -> None:
    """`kicked` carries no session or handle; the publisher is found by (room, id) and goes."""
    state = replay("10-media", upto="00065")
    server = state.servers[SERVER]
    assert server.publishers == {}
    handle = server.handle((PUB_SESSION_10, PUB_HANDLE_10))
    assert handle is not None
    assert handle.room is None and handle.role == PUBLISHER
    subscriber = server.subscribers[(SUB_SESSION_10, SUB_HANDLE_10)]
    assert subscriber.feed_ids == set()  # the kicked feed is no longer relayed
    assert "4321" in server.rooms


def test_rooms_after_destroyed() -> None:
    """After `destroyed`, room 4321 and its subscriber membership are gone."""
    state = replay("10-media", upto="00081")
    server = state.servers[SERVER]
    assert server.rooms == {}
    assert server.subscribers == {}
    assert server.publishers == {}
    viewer = server.handle((SUB_SESSION_10, SUB_HANDLE_10))
    assert viewer is not None and viewer.room is None  # out of the room with it


def test_media_after_session_destroyed_does_not_resurrect_it() -> None:
    """Stats queued before a session's destroy arrive after it (00083) and bring nothing back."""
    state = replay("10-media", upto="00083")
    server = state.servers[SERVER]
    assert SUB_SESSION_10 not in server.sessions
    assert server.handle((SUB_SESSION_10, SUB_HANDLE_10)) is None


def test_media_scenario_ends_empty() -> None:
    """At the end of 10-media every session and handle is gone and the count is zero."""
    state = replay("10-media")
    server = state.servers[SERVER]
    assert server.sessions == {}
    assert server.handle_count == 0 and state.handle_count == 0


def test_media_stats_tell_the_handle_its_streams() -> None:
    """The publisher handle knows the kind of each mid it had stats for, and when (the numbers
    are the signals')."""
    state = replay("10-media", upto="00046")
    handle = state.servers[SERVER].handle((PUB_SESSION_10, PUB_HANDLE_10))
    assert handle is not None
    assert handle.media == {("0", 0): "video", ("1", 0): "audio"}
    assert handle.media_source == "event" and handle.media_seen is not None


def test_unpublished_twice_keeps_the_publisher_in_the_room() -> None:
    """`unpublished` comes twice (40-reuse 00063, 00065): alice stays joined, not publishing."""
    state = replay("40-reuse", upto="00065")
    server = state.servers[SERVER]
    alice = server.publishers[("1234", ALICE_40)]
    assert alice.publishing is False
    assert server.publishers[("1234", BOB_40)].publishing is True
    assert server.subscribers[VIEWER_KEY_40].feed_ids == {BOB_40}


def test_subscriber_update_with_a_publisher_context_is_not_applied_to_the_publisher() -> None:
    """The viewer's `updated` comes with alice's handle (40-reuse 00063): she stays a publisher."""
    state = replay("40-reuse", upto="00063")
    server = state.servers[SERVER]
    handle = server.handle(ALICE_KEY_40)
    assert handle is not None and handle.role == PUBLISHER
    assert ALICE_KEY_40 not in server.subscribers


def test_second_subscription_on_one_handle_adds_the_feed() -> None:
    """`subscribe` adds bob to the viewer handle (40-reuse 00047): it carries two feeds."""
    state = replay("40-reuse", upto="00047")
    subscriber = state.servers[SERVER].subscribers[VIEWER_KEY_40]
    assert subscriber.feed_ids == {ALICE_40, BOB_40}
    assert ("2", BOB_40) in subscriber.feeds


def test_republish_on_the_same_handle() -> None:
    """Publish after unpublish on the same handle makes alice publishing again, video only."""
    state = replay("40-reuse", upto="00076")
    alice = state.servers[SERVER].publishers[("1234", ALICE_40)]
    assert alice.publishing is True
    assert [s.kind for s in alice.streams] == ["video"]
    assert alice.handle == ALICE_KEY_40


def test_leaving_removes_the_publisher_and_other_plugins_are_tracked() -> None:
    """After alice's `leaving`, only bob publishes; the echotest handle keeps its plugin."""
    state = replay("40-reuse", upto="00089")
    server = state.servers[SERVER]
    assert list(server.publishers) == [("1234", BOB_40)]
    echo = server.handle(ECHO_KEY_40)
    assert echo is not None and echo.plugin == "janus.plugin.echotest" and echo.role is None


def test_reuse_scenario_ends_with_an_empty_static_room() -> None:
    """At the end of 40-reuse, room 1234 is still known, with nobody in it."""
    server = replay("40-reuse").servers[SERVER]
    assert list(server.rooms) == ["1234"]
    assert server.publishers == {} and server.subscribers == {} and server.sessions == {}


def test_stale_state_is_dropped_and_counted(clock: FakeClock) -> None:
    """Handles, sessions and publishers not confirmed within stale_after are swept and counted."""
    state = State(Limits(stale_after=60.0), targets=(SERVER,))
    for event in events_of("10-media", upto="00034"):
        state.apply(event, clock())
    clock.advance(30)
    assert state.sweep(clock()) == 0
    # Only the subscriber handle keeps reporting.
    state.apply(ev([], 32, SUB_SESSION_10, SUB_HANDLE_10, subtype=3), clock())
    clock.advance(31)
    dropped = state.sweep(clock())
    server = state.servers[SERVER]
    assert server.publishers == {}
    assert server.handle((PUB_SESSION_10, PUB_HANDLE_10)) is None
    assert server.handle((SUB_SESSION_10, SUB_HANDLE_10)) is not None
    assert dropped == 3  # the publisher handle, its session, the publisher
    assert state.telemetry.state_dropped == {
        ("handle", "stale"): 1,
        ("session", "stale"): 1,
        ("publisher", "stale"): 1,
    }
    assert "4321" in server.rooms  # the subscriber is still in it


def test_a_stale_handle_that_reports_again_comes_back(clock: FakeClock) -> None:
    """A handle dropped as stale is not blacklisted: its next event tracks it again."""
    state = State(Limits(stale_after=10.0), targets=(SERVER,))
    state.apply(ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, 5, 6), clock())
    clock.advance(11)
    state.sweep(clock())
    assert state.servers[SERVER].handle((5, 6)) is None
    state.apply(ev([], 32, 5, 6, subtype=3), clock())
    assert state.servers[SERVER].handle((5, 6)) is not None


def test_handles_over_the_limit_are_counted_once_and_not_tracked(clock: FakeClock) -> None:
    """With max_tracked_handles=2, a third handle is refused and counted once, however chatty."""
    state = State(Limits(max_tracked_handles=2), targets=(SERVER,))
    for handle in (1, 2, 3):
        state.apply(
            ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, 9, handle), clock()
        )
    for _ in range(5):
        state.apply(ev([], 32, 9, 3, subtype=3), clock())
    assert state.handle_count == 2
    assert state.servers[SERVER].handle((9, 3)) is None
    assert state.telemetry.state_dropped == {("handle", "limit"): 1}
    state.apply(ev({"name": "detached", "plugin": "janus.plugin.videoroom"}, 2, 9, 1), clock())
    state.apply(ev([], 32, 9, 3, subtype=3), clock())
    assert state.servers[SERVER].handle((9, 3)) is not None  # room again under the limit


def test_core_started_resets_what_the_old_process_had() -> None:
    """A core `started` event (Janus restarted) forgets all sessions, handles and rooms."""
    state = replay("10-media", upto="00034")
    started = events_of("00-startup")[0]
    assert isinstance(started.body, CoreEvent)
    state.apply(started, 1001.0)
    server = state.servers[SERVER]
    assert server.sessions == {} and server.rooms == {} and server.publishers == {}
    assert state.handle_count == 0
    assert server.running is True
    assert server.info is not None and server.info.version_string == "1.1.2"


def test_core_shutdown_marks_the_server_down() -> None:
    """A core `shutdown` event empties the server's state and marks it not running."""
    state = replay("10-media", upto="00034")
    for event in events_of("90-shutdown"):
        state.apply(event, 1001.0)
    server = state.servers[SERVER]
    assert server.running is False and server.sessions == {}


def test_unknown_emitter_is_tracked_under_its_own_name_up_to_a_bound() -> None:
    """Events from an emitter that is no target get their own server, up to the limit."""
    state = State(Limits(max_unknown_emitters=1), targets=(SERVER,))
    assert state.admit("stray-1", 1000.0)
    state.apply(
        decode_event(
            {"emitter": "stray-1", "type": 1, "session_id": 4, "event": {"name": "created"}},
            DecodeNotes(),
        ),
        1000.0,
    )
    assert state.servers["stray-1"].configured is False
    assert 4 in state.servers["stray-1"].sessions
    assert not state.admit("stray-2", 1000.0)
    assert "stray-2" not in state.servers
    assert state.admit(SERVER, 1000.0)


def test_idle_unknown_emitter_disappears() -> None:
    """An unknown emitter with nothing left is forgotten after stale_after."""
    state = State(Limits(stale_after=5.0), targets=(SERVER,))
    state.apply(decode_event({"emitter": "stray", "type": 128, "event": {}}, DecodeNotes()), 1000.0)
    state.sweep(1010.0)
    assert "stray" not in state.servers and SERVER in state.servers


def test_reloaded_targets_change_which_servers_are_configured() -> None:
    """configure() marks new targets configured and old ones unknown, keeping their state."""
    state = replay("10-media", upto="00034")
    state.configure(("janus-other",), Limits())
    assert state.servers[SERVER].configured is False
    assert state.servers[SERVER].publishers
    assert state.servers["janus-other"].configured is True


def test_a_session_id_can_come_back_after_destroy() -> None:
    """A client-chosen session id reused after its destroy is tracked again on `created`."""
    state = State(targets=(SERVER,))
    state.apply(ev({"name": "created"}, 1, 77), 1.0)
    state.apply(ev({"name": "destroyed"}, 1, 77), 2.0)
    state.apply(ev([], 32, 77, 1, subtype=3), 3.0)
    assert 77 not in state.servers[SERVER].sessions
    state.apply(ev({"name": "created"}, 1, 77), 4.0)
    state.apply(ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, 77, 1), 5.0)
    assert state.servers[SERVER].handle((77, 1)) is not None


def test_a_handle_seen_first_mid_life_is_tracked() -> None:
    """A daemon that missed `created`/`attached` still tracks a handle from its media stats."""
    state = State(targets=(SERVER,))
    event = ev(
        [{"mid": "0", "media": "video", "bytes-received-lastsec": 100}],
        32,
        8,
        9,
        subtype=3,
        opaque_id="x",
    )
    assert isinstance(event.body, MediaStatsEvent)
    state.apply(event, 1.0)
    handle = state.servers[SERVER].handle((8, 9))
    assert handle is not None and handle.opaque_id == "x"
    assert handle.media == {("0", 0): "video"}


def test_string_ids_are_kept_as_strings() -> None:
    """With string_ids, room and participant ids stay the strings Janus sent."""
    state = State(targets=(SERVER,))
    joined = {
        "plugin": "janus.plugin.videoroom",
        "data": {"event": "joined", "room": "lobby", "id": "u-1"},
    }
    state.apply(ev(joined, 64, 1, 1), 1.0)
    assert list(state.servers[SERVER].publishers) == [("lobby", "u-1")]


def test_session_and_handle_events_have_their_own_body_types() -> None:
    """The session and handle events of 10-media decode to SessionEvent and HandleEvent."""
    kinds = {type(e.body) for e in events_of("10-media", upto="00003") if e.type in (1, 2)}
    assert kinds == {SessionEvent, HandleEvent}


def test_late_events_of_a_detached_handle_bring_no_publisher_back() -> None:
    """A `configured` queued before its handle's detach arrives after it and changes nothing."""
    state = State(targets=(SERVER,))
    joined = {"plugin": "janus.plugin.videoroom",
              "data": {"event": "joined", "room": 5, "id": 42}}  # fmt: skip
    state.apply(ev(joined, 64, 1, 2), 1.0)
    state.apply(ev({"name": "detached", "plugin": "janus.plugin.videoroom"}, 2, 1, 2), 2.0)
    configured = {"plugin": "janus.plugin.videoroom",
                  "data": {"event": "configured", "room": 5, "id": 42, "bitrate": 1}}  # fmt: skip
    state.apply(ev(configured, 64, 1, 2), 3.0)
    server = state.servers[SERVER]
    assert server.publishers == {}
    assert server.rooms["5"].bitrate_cap is None


def test_tombstones_expire_oldest_first_and_the_walk_stops_at_the_first_kept() -> None:
    """Only tombstones older than the horizon go; one noted out of order waits for the
    newer one before it (kept a little longer, never dropped early)."""
    from monitor.state.model import expire_gone, remember_gone

    gone: dict[int, float] = {}
    for key, at in ((1, 1.0), (2, 2.0), (3, 5.0), (4, 3.0), (5, 6.0)):
        remember_gone(gone, key, at, bound=100)
    assert expire_gone(gone, horizon=4.0) == 2
    assert list(gone) == [3, 4, 5]  # 4 (at 3.0) waits behind 3 (at 5.0)
    remember_gone(gone, 3, 7.0, bound=100)  # noted again: moves to the back
    assert expire_gone(gone, horizon=6.5) == 2
    assert list(gone) == [3]
