"""The Admin API poller against an in-memory Janus: reconcile, repair, pacing, failures."""

from __future__ import annotations

import copy
import json
from typing import Any

from monitor.config import parse_config
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.polling.poller import Poller
from monitor.state import PUBLISHER, SUBSCRIBER, State
from monitor.telemetry import PollStats
from tests.conftest import ADMIN, FakeClock
from tests.fakes import FakeAdmin, fake_sleep

SERVER = "janus-lab-1"


def fixture_info(path: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((ADMIN / path).read_text())["response"]["info"])


PUBLISHER_INFO = fixture_info("10-media/003-handle_info-pub-4725100285792786.json")
SUBSCRIBER_INFO = fixture_info("10-media/005-handle_info-sub-5637909923716478.json")


def make_poller(
    clock: FakeClock, admin: FakeAdmin, budget: str = "5%", interval: str = "5s",
    reconcile: str = "30s",
) -> Poller:  # fmt: skip
    config = parse_config(
        f"targets: [{{name: {SERVER}, admin_url: 'http://127.0.0.1:7088/admin', "
        f"poll_interval: {interval}, poll_budget: '{budget}', reconcile_interval: {reconcile}}}]",
        env={},
    )
    state = State(targets=(SERVER,))
    stats = PollStats()
    admin.observer = stats.record
    return Poller(
        config.targets[0], admin, state, stats, clock=clock, wall=lambda: 1.8e9,  # type: ignore[arg-type]
        sleep=fake_sleep(clock),
    )  # fmt: skip


async def run(poller: Poller, clock: FakeClock, polls: int) -> None:
    """Polls as the scheduler runs them: one every poll_interval."""
    for _ in range(polls):
        start = clock.now
        await poller.poll()
        clock.now = max(clock.now, start + poller.target.poll_interval)


def server_of(poller: Poller):  # type: ignore[no-untyped-def]
    return poller.state.servers[SERVER]


async def test_every_poll_asks_info_sessions_and_rooms(clock: FakeClock) -> None:
    """Each poll starts with info, list_sessions and the VideoRoom list; rooms get their caps."""
    admin = FakeAdmin(clock)
    admin.add_room(1234, bitrate=256000, publishers=6)
    poller = make_poller(clock, admin)
    await run(poller, clock, 1)
    assert [c[0] for c in admin.calls[:3]] == ["info", "list_sessions", "message_plugin:list"]
    server = server_of(poller)
    room = server.rooms["1234"]
    assert (room.bitrate_cap, room.cap_source, room.max_publishers) == (256000, "poll", 6)
    assert room.recording is False
    assert server.info is not None and server.info.version_string == "1.1.2"
    assert poller.stats.up is True and poller.stats.last_success == 1.8e9


async def test_what_events_missed_appears(clock: FakeClock) -> None:
    """A daemon that saw no events learns sessions, handles, roles and rooms from polls."""
    admin = FakeAdmin(clock)
    admin.add_room(4321, bitrate=128000)
    admin.participants[4321] = [{"id": 2244074596607377, "display": "alice", "publisher": True}]
    admin.add_handle(3647527005210999, 4725100285792786, PUBLISHER_INFO)
    admin.add_handle(7152267511538354, 5637909923716478, SUBSCRIBER_INFO)
    poller = make_poller(clock, admin, interval="1s", reconcile="5s")
    await run(poller, clock, 3)
    server = server_of(poller)
    assert set(server.sessions) == {3647527005210999, 7152267511538354}
    publisher = server.publishers[("4321", "2244074596607377")]
    assert publisher.display == "alice" and publisher.publishing is True
    assert publisher.handle == (3647527005210999, 4725100285792786)
    handle = server.handle((3647527005210999, 4725100285792786))
    assert handle is not None and handle.role == PUBLISHER and handle.plugin.endswith("videoroom")
    subscriber = server.subscribers[(7152267511538354, 5637909923716478)]
    assert subscriber.room == "4321" and subscriber.feed_ids == {"2244074596607377"}
    viewer = server.handle((7152267511538354, 5637909923716478))
    assert viewer is not None and viewer.role == SUBSCRIBER
    plugin_only = [c for c in admin.calls if c[0] == "handle_info:plugin_only"]
    assert len(plugin_only) == 2  # each unexplained handle asked once
    assert server.plugin_handles == {"janus.plugin.videoroom": 2}  # learnt from handle_info


async def test_a_publisher_with_stale_media_gets_a_full_handle_info(clock: FakeClock) -> None:
    """Without media stats events, a publishing handle's stats come from a full handle_info."""
    admin = FakeAdmin(clock)
    admin.add_room(4321, bitrate=128000)
    admin.participants[4321] = [{"id": 2244074596607377, "display": "alice", "publisher": True}]
    admin.add_handle(3647527005210999, 4725100285792786, PUBLISHER_INFO)
    poller = make_poller(clock, admin, interval="5s")
    await run(poller, clock, 4)
    handle = server_of(poller).handle((3647527005210999, 4725100285792786))
    assert handle is not None and handle.media_source == "poll"
    assert handle.media[("0", 0)] == "video"
    full = [c for c in admin.calls if c[0] == "handle_info"]
    assert 1 <= len(full) <= 2  # refreshed only once stale again (>= 10 s)


async def test_events_explain_handles_so_no_handle_info_is_sent(clock: FakeClock) -> None:
    """A handle whose plugin and role came from events is never asked about."""
    admin = FakeAdmin(clock)
    admin.add_room(1234)
    admin.participants[1234] = [{"id": 9, "display": "d", "publisher": False}]
    admin.add_handle(1, 2, {"plugin_specific": {"type": "publisher", "room": 1234, "id": 9,
                                                 "streams": []}})  # fmt: skip
    poller = make_poller(clock, admin, interval="1s")
    for raw in (
        {"emitter": SERVER, "type": 1, "session_id": 1, "event": {"name": "created"}},
        {"emitter": SERVER, "type": 2, "session_id": 1, "handle_id": 2,
         "event": {"name": "attached", "plugin": "janus.plugin.videoroom"}},
        {"emitter": SERVER, "type": 64, "session_id": 1, "handle_id": 2,
         "event": {"plugin": "janus.plugin.videoroom",
                   "data": {"event": "joined", "room": 1234, "id": 9, "display": "d"}}},
    ):  # fmt: skip
        poller.state.apply(decode_event(raw, DecodeNotes()), clock.now)
    await run(poller, clock, 5)
    assert not [c for c in admin.calls if c[0].startswith("handle_info")]
    assert server_of(poller).publishers[("1234", "9")].handle == (1, 2)


async def test_what_janus_no_longer_lists_disappears(clock: FakeClock) -> None:
    """Sessions, handles and participants Janus stopped listing are dropped and counted."""
    admin = FakeAdmin(clock)
    admin.add_room(1234)
    admin.participants[1234] = [{"id": 9, "display": "x", "publisher": True}]
    admin.add_handle(1, 10)
    admin.add_handle(1, 11)
    admin.add_handle(2, 20)
    poller = make_poller(clock, admin, interval="1s", reconcile="3s")
    await run(poller, clock, 2)
    server = server_of(poller)
    assert set(server.sessions) == {1, 2} and server.handle_count == 3
    assert ("1234", "9") in server.publishers
    del admin.sessions[2]
    admin.sessions[1].discard(11)
    admin.participants[1234] = []
    await run(poller, clock, 4)
    assert set(server.sessions) == {1}
    assert set(server.sessions[1].handles) == {10}
    assert server.publishers == {}
    assert sum(server.plugin_handles.values()) == 1  # the dropped handles are not counted
    dropped = poller.state.telemetry.state_dropped
    assert dropped[("session", "reconcile")] == 1
    assert dropped[("handle", "reconcile")] >= 1
    assert dropped[("publisher", "reconcile")] == 1


async def test_state_confirmed_by_an_event_after_the_request_is_kept(clock: FakeClock) -> None:
    """A session created after list_sessions was answered is not removed by that answer."""
    admin = FakeAdmin(clock)
    poller = make_poller(clock, admin)
    original = admin.list_sessions

    async def racing_list() -> list[int]:
        listed = await original()
        admin.sessions[99] = set()  # created right after Janus answered
        created = {"emitter": SERVER, "type": 1, "session_id": 99, "event": {"name": "created"}}
        poller.state.apply(decode_event(created, DecodeNotes()), clock.now)
        return listed

    admin.list_sessions = racing_list  # type: ignore[method-assign]
    await run(poller, clock, 1)
    assert 99 in server_of(poller).sessions


async def test_rooms_gone_or_private(clock: FakeClock) -> None:
    """A known room missing from `list` is checked: 426 drops it, a private room stays."""
    admin = FakeAdmin(clock)
    poller = make_poller(clock, admin, interval="1s")
    for room in (5, 6):
        created = {"emitter": SERVER, "type": 64, "session_id": 1, "handle_id": 2,
                   "event": {"plugin": "janus.plugin.videoroom",
                             "data": {"event": "created", "room": room}}}  # fmt: skip
        poller.state.apply(decode_event(created, DecodeNotes()), clock.now)
    admin.participants[6] = []  # exists, but private: `list` does not show it
    admin.rooms[6] = {"room": 6}
    real_list = admin.message_plugin

    async def private_aware(plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await real_list(plugin, body)
        if body["request"] == "list":
            reply["list"] = [r for r in reply["list"] if r.get("room") != 6]
        return reply

    admin.message_plugin = private_aware  # type: ignore[method-assign]
    clock.advance(1)
    await run(poller, clock, 2)
    assert set(server_of(poller).rooms) == {"6"}
    assert poller.state.telemetry.state_dropped[("room", "reconcile")] == 1


async def test_gone_session_and_handle_answers(clock: FakeClock) -> None:
    """458 on list_handles removes the session; 459 on handle_info removes the handle."""
    admin = FakeAdmin(clock)
    poller = make_poller(clock, admin, interval="1s")
    for raw in (
        {"emitter": SERVER, "type": 2, "session_id": 7, "handle_id": 8,
         "event": {"name": "attached", "plugin": "janus.plugin.videoroom"}},
        {"emitter": SERVER, "type": 2, "session_id": 5, "handle_id": 6,
         "event": {"name": "attached", "plugin": "janus.plugin.videoroom"}},
    ):  # fmt: skip
        poller.state.apply(decode_event(raw, DecodeNotes()), clock.now)
    admin.sessions[5] = set()  # session 5 exists without handle 6; session 7 does not exist
    clock.advance(2)
    await run(poller, clock, 3)
    server = server_of(poller)
    assert 7 not in server.sessions
    assert server.handle((5, 6)) is None


async def test_a_very_slow_janus_gets_fewer_polls_not_longer_ones(clock: FakeClock) -> None:
    """When each request costs 0.3 s, polls are skipped to stay in budget, none overruns."""
    admin = FakeAdmin(clock, cost=0.3)
    admin.add_handle(1, 2)
    poller = make_poller(clock, admin, budget="5%", interval="1s")
    start = clock.now
    durations = []
    for _ in range(120):
        began = clock.now
        await poller.poll()
        durations.append(clock.now - began)
        clock.now = max(clock.now, began + 1.0)
    elapsed = clock.now - start
    assert len(admin.calls) * admin.cost / elapsed <= 0.05 * 1.15
    assert poller.stats.skipped > 90
    assert max(durations) < 1.0 + 3 * 0.3  # the essentials at most, never the pauses
    assert poller.stats.up is True


async def test_a_failing_later_request_ends_the_poll_but_janus_stays_up(clock: FakeClock) -> None:
    """Only info, list_sessions and the room list decide janus_up; a later failure does not."""
    admin = FakeAdmin(clock)
    admin.add_handle(1, 2)
    poller = make_poller(clock, admin, interval="1s")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise admin.errors[1]("list_handles", "timed out")

    admin.list_handles = broken  # type: ignore[method-assign]
    await run(poller, clock, 3)
    assert poller.stats.up is True
    assert poller.stats.skipped == 0


async def test_a_private_room_is_checked_once_per_reconcile_interval(clock: FakeClock) -> None:
    """A room `list` does not show (private) is confirmed once, then every reconcile_interval."""
    admin = FakeAdmin(clock)
    poller = make_poller(clock, admin, interval="1s", reconcile="10s")
    created = {"emitter": SERVER, "type": 64, "session_id": 1, "handle_id": 2,
               "event": {"plugin": "janus.plugin.videoroom",
                         "data": {"event": "created", "room": 6}}}  # fmt: skip
    poller.state.apply(decode_event(created, DecodeNotes()), clock.now)
    admin.rooms[6] = {"room": 6}
    admin.participants[6] = []
    real = admin.message_plugin

    async def hide_room_6(plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await real(plugin, body)
        if body["request"] == "list":
            reply["list"] = []
        return reply

    admin.message_plugin = hide_room_6  # type: ignore[method-assign]
    clock.advance(1)
    await run(poller, clock, 30)
    checks = [c for c in admin.calls if c[0] == "message_plugin:listparticipants"]
    assert 3 <= len(checks) <= 5, len(checks)  # about once per 10 s over 30 s
    assert server_of(poller).rooms["6"].is_private is True


async def test_an_answer_older_than_a_kick_does_not_bring_the_publisher_back(
    clock: FakeClock,
) -> None:
    """listparticipants asked before a kick event arrived cannot re-create the kicked one."""
    admin = FakeAdmin(clock)
    admin.add_room(1234)
    admin.participants[1234] = [{"id": 9, "display": "x", "publisher": True}]
    poller = make_poller(clock, admin, interval="1s")
    real = admin.message_plugin

    async def kicked_meanwhile(plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await real(plugin, body)
        if body["request"] == "listparticipants":
            kicked = {"emitter": SERVER, "type": 64,
                      "event": {"plugin": "janus.plugin.videoroom",
                                "data": {"event": "kicked", "room": 1234, "id": 9}}}  # fmt: skip
            poller.state.apply(decode_event(kicked, DecodeNotes()), clock.now)
        return reply

    joined = {"emitter": SERVER, "type": 64, "session_id": 1, "handle_id": 2,
              "event": {"plugin": "janus.plugin.videoroom",
                        "data": {"event": "joined", "room": 1234, "id": 9}}}  # fmt: skip
    poller.state.apply(decode_event(joined, DecodeNotes()), clock.now)
    admin.message_plugin = kicked_meanwhile  # type: ignore[method-assign]
    await run(poller, clock, 1)
    assert ("1234", "9") not in server_of(poller).publishers
    assert server_of(poller).rooms["1234"].members_changed is True  # ask again next poll


async def test_string_id_rooms_are_asked_with_string_ids(clock: FakeClock) -> None:
    """On a string_ids VideoRoom, a numeric-looking room id is sent as the string it is."""
    admin = FakeAdmin(clock)
    admin.add_room(1)
    admin.rooms["1234"] = dict(admin.rooms.pop(1), room="1234")
    admin.participants["1234"] = []
    poller = make_poller(clock, admin, interval="1s")
    await run(poller, clock, 2)
    asked = [c[1] for c in admin.calls if c[0] == "message_plugin:listparticipants"]
    assert asked and all(room == "1234" for room in asked)


async def test_a_short_budget_neither_starves_explanations_nor_loses_handles(
    clock: FakeClock,
) -> None:
    """When confirmations alone would fill the budget, handles still get explained and none
    of a listed session is dropped as stale."""
    admin = FakeAdmin(clock, cost=0.004)
    for session in range(1, 601):
        admin.add_handle(session, 1)
    poller = make_poller(clock, admin, budget="5%", interval="2s", reconcile="20s")
    state = poller.state
    state.limits.stale_after = 30.0
    for _ in range(60):  # 120 s, sweeping as the daemon does
        began = clock.now
        await poller.poll()
        clock.now = max(clock.now, began + 2.0)
        state.sweep(clock.now)
    server = server_of(poller)
    assert server.handle_count == 600
    assert state.telemetry.state_dropped.get(("handle", "stale"), 0) == 0
    explained = sum(1 for h in server.handles() if h.explained)
    assert explained >= 300, explained
