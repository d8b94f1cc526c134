"""A real Janus 1.1.2 delivering its events to the real daemon, over sampleevh and over wsevh.

Each test starts the daemon in-process on a free port (one target named like Janus's
server_name), starts the Debian ``janus`` pointed at it, drives the VideoRoom plugin through
the HTTP Janus API (no media: joins without publish) and checks after every step what the
daemon made of the events Janus actually sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from lab.janus import (
    WSEVH_DEFAULT_SUBPROTOCOL,
)
from tests.conftest import (
    publisher_info,
    received,
    sample,
    series,
)
from tests.janus_lab import (
    EVH_PASSWORD,
    EVH_USER,
    VIDEOROOM,
    WEBHOOK_PATH,
    Lab,
    daemon_yaml,
    janus_lab,
    janus_log,
)

SUBPROTOCOL = WSEVH_DEFAULT_SUBPROTOCOL  # Janus sends it; the daemon must echo it
ROOM = 4242
ROOM_CAP = 128000
RECONNECT_TIMEOUT = 12.0  # wsevh retries after 1 s, then 2, 4, 8 s


# --- the checks -------------------------------------------------------------------------------


async def started_event_arrived(lab: Lab) -> None:
    """The core started event: counted, and /api/v1/servers shows the running 1.1.2."""

    async def check() -> None:
        assert received(await lab.samples(), lab.name).get("core", 0) >= 1
        servers = {s["name"]: s for s in (await lab.daemon.get_json("/api/v1/servers"))["servers"]}
        server = servers[lab.name]
        assert server["configured"] is True
        assert server["running"] is True
        assert server["version"] == "1.1.2"
        assert server["server_name"] == lab.name

    await lab.eventually(check, "core started event")
    # Not necessarily first: Janus answers (and reports) the readiness GET /janus/info before
    # it notifies `started`.
    assert lab.arrivals.events.count("core:started") == 1, lab.arrivals.events


async def nothing_rejected(lab: Lab, transport: str) -> None:
    """No event or body refused, nothing unknown or dropped, every delivery answered 200."""
    samples = await lab.samples()
    metric = "janus_monitor_events_rejected_total"
    rejected = {
        labels["reason"]: samples[(metric, frozenset(labels.items()))]
        for labels in series(samples, metric)
    }
    assert rejected, "janus_monitor_events_rejected_total has no series"
    assert set(rejected.values()) == {0.0}, rejected
    assert series(samples, "janus_monitor_events_unknown_total") == []
    assert series(samples, "janus_monitor_state_dropped_total") == []
    codes = {
        (labels["transport"], labels["code"])
        for labels in series(samples, "janus_monitor_webhook_requests_total")
    }
    assert codes == {(transport, "200")}, codes  # with basic auth: every POST carried it


async def videoroom_flow(lab: Lab) -> None:
    """Two publishers join a room, one leaves, the other's handle is detached, sessions and the
    room are destroyed: sessions, handles, the room and its publishers follow in the daemon."""
    api, name, room = lab.api, lab.name, str(ROOM)

    # Session and handle of alice: tracked with plugin and opaque_id.
    s1 = await api.create_session()
    h1 = await api.attach(s1, "e2e-alice")

    async def alice_tracked() -> None:
        handle = lab.handle(s1, h1)
        assert handle is not None, f"handle {h1} of session {s1} not tracked"
        assert (handle.plugin, handle.opaque_id) == (VIDEOROOM, "e2e-alice")
        assert sample(await lab.samples(), "janus_monitor_tracked", kind="handles") == 1

    await lab.eventually(alice_tracked, "session and handle of alice")

    # The room, created through the API: present, its cap not known yet (`created` has no cap).
    created = await api.sync_message(
        s1, h1, {"request": "create", "room": ROOM, "bitrate": ROOM_CAP, "publishers": 4}
    )
    assert created["videoroom"] == "created"

    async def room_exists() -> None:
        rooms = (await lab.daemon.get_json("/api/v1/rooms"))["rooms"]
        assert [(r["server"], r["room"]) for r in rooms] == [(name, room)]
        assert rooms[0]["bitrate_cap"] is None
        assert rooms[0]["publishers"] == []
        samples = await lab.samples()
        assert sample(samples, "janus_videoroom_rooms", server=name) == 1
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=room) == 0

    await lab.eventually(room_exists, "room created")

    # alice joins as publisher (no publish: no media, no `configured`).
    joined = await api.async_message(
        s1, h1, {"request": "join", "ptype": "publisher", "room": ROOM, "display": "e2e-alice"}
    )
    assert joined["videoroom"] == "joined"
    alice = str(joined["id"])

    async def alice_joined() -> None:
        publishers = (await lab.daemon.get_json("/api/v1/publishers"))["publishers"]
        assert [
            (p["room"], p["publisher"], p["display"], p["session_id"], p["handle_id"])
            for p in publishers
        ] == [(room, alice, "e2e-alice", s1, h1)]
        assert publishers[0]["opaque_id"] == "e2e-alice"
        assert publishers[0]["publishing"] is False
        assert publishers[0]["bitrate_limit"] is None
        samples = await lab.samples()
        assert publisher_info(samples, name) == {(room, alice, "e2e-alice")}
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=room) == 1
        assert series(samples, "janus_videoroom_room_bitrate_cap_bits_per_second") == []

    await lab.eventually(alice_joined, "alice joined")

    # A configure without JSEP: `configured` carries the bitrate copied from the room at join.
    configured = await api.async_message(s1, h1, {"request": "configure"})
    assert configured.get("configured") == "ok", configured

    async def cap_known() -> None:
        rooms = (await lab.daemon.get_json("/api/v1/rooms"))["rooms"]
        assert (rooms[0]["bitrate_cap"], rooms[0]["bitrate_cap_source"]) == (ROOM_CAP, "event")
        publishers = (await lab.daemon.get_json("/api/v1/publishers"))["publishers"]
        assert publishers[0]["bitrate_limit"] == ROOM_CAP
        cap = sample(
            await lab.samples(),
            "janus_videoroom_room_bitrate_cap_bits_per_second",
            server=name,
            room=room,
        )
        assert cap == ROOM_CAP

    await lab.eventually(cap_known, "room cap from configured")

    # bob joins from a second session: two publishers with their displays.
    s2 = await api.create_session()
    h2 = await api.attach(s2, "e2e-bob")
    joined = await api.async_message(
        s2, h2, {"request": "join", "ptype": "publisher", "room": ROOM, "display": "e2e-bob"}
    )
    bob = str(joined["id"])

    async def both_joined() -> None:
        handle = lab.handle(s2, h2)
        assert handle is not None
        assert (handle.plugin, handle.opaque_id, handle.role) == (VIDEOROOM, "e2e-bob", "publisher")
        rooms = (await lab.daemon.get_json("/api/v1/rooms"))["rooms"]
        assert sorted(rooms[0]["publishers"]) == sorted([alice, bob])
        samples = await lab.samples()
        assert publisher_info(samples, name) == {
            (room, alice, "e2e-alice"),
            (room, bob, "e2e-bob"),
        }
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=room) == 2
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 2
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 2

    await lab.eventually(both_joined, "alice and bob joined")

    # bob leaves (`leaving`, without session/handle): one publisher left, bob's handle stays.
    left = await api.async_message(s2, h2, {"request": "leave"})
    assert left.get("leaving") == "ok", left

    async def bob_left() -> None:
        samples = await lab.samples()
        assert publisher_info(samples, name) == {(room, alice, "e2e-alice")}
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=room) == 1
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 2
        handle = lab.handle(s2, h2)
        assert handle is not None
        assert handle.room is None

    await lab.eventually(bob_left, "bob left")

    # alice's handle is detached (unpublished x2, leaving, detached): no publisher left.
    await api.detach(s1, h1)

    async def alice_detached() -> None:
        samples = await lab.samples()
        assert publisher_info(samples, name) == set()
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=room) == 0
        assert sample(samples, "janus_videoroom_rooms", server=name) == 1
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 1
        assert lab.handle(s1, h1) is None

    await lab.eventually(alice_detached, "alice's handle detached")

    # Both sessions destroyed: nothing tracked but the room.
    await api.destroy(s1)
    await api.destroy(s2)

    async def sessions_gone() -> None:
        samples = await lab.samples()
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 0
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 0
        assert lab.server.sessions == {}

    await lab.eventually(sessions_gone, "sessions destroyed")

    # The room destroyed from a third session: no room series left.
    s3 = await api.create_session()
    h3 = await api.attach(s3, "e2e-admin")
    destroyed = await api.sync_message(s3, h3, {"request": "destroy", "room": ROOM})
    assert destroyed["videoroom"] == "destroyed"
    await api.destroy(s3)

    async def room_gone() -> None:
        assert (await lab.daemon.get_json("/api/v1/rooms"))["rooms"] == []
        samples = await lab.samples()
        assert sample(samples, "janus_videoroom_rooms", server=name) == 0
        assert series(samples, "janus_videoroom_room_publishers") == []
        assert series(samples, "janus_videoroom_room_bitrate_cap_bits_per_second") == []
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 0
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 0

    await lab.eventually(room_gone, "room destroyed")

    # What arrived, by kind (transport `request` events interleave and are not asserted).
    # The last detach can still be on its way when the room is gone: wait for the totals.
    async def all_arrived() -> None:
        plugin_events = [e for e in lab.arrivals.events if e.startswith("plugin:")]
        assert plugin_events == [
            "plugin:created",
            "plugin:joined",
            "plugin:configured",
            "plugin:joined",
            "plugin:leaving",
            "plugin:unpublished",
            "plugin:unpublished",
            "plugin:leaving",
            "plugin:destroyed",
        ], lab.arrivals.events
        counts = received(await lab.samples(), name)
        assert (counts["session"], counts["handle"], counts["plugin"]) == (6, 6, 9), counts
        assert counts["transport"] >= 1, counts

    await lab.eventually(all_arrived, "every event of the flow counted")


async def janus_shutdown_arrives(lab: Lab) -> None:
    """Stopping Janus delivers the core shutdown event: the server is no longer running."""
    assert await asyncio.to_thread(lab.janus.stop) == 0

    async def stopped() -> None:
        servers = (await lab.daemon.get_json("/api/v1/servers"))["servers"]
        assert [(s["name"], s["running"]) for s in servers] == [(lab.name, False)]

    await lab.eventually(stopped, "core shutdown event")
    assert lab.arrivals.events.count("core:shutdown") == 1, lab.arrivals.events


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_sampleevh_delivers_a_videoroom_session_to_the_daemon(tmp_path: Path) -> None:
    """Janus's sampleevh (grouped compact JSON, basic auth) POSTs every event to the daemon,
    whose state and metrics follow sessions, handles, the room and its publishers."""
    name = "janus-e2e-sampleevh"
    async with janus_lab(
        tmp_path,
        name,
        daemon_yaml(name, basic_auth=True),
        evh_backend="http://{daemon}" + WEBHOOK_PATH,
        evh_user=EVH_USER,
        evh_password=EVH_PASSWORD,
        evh_grouping=True,
        evh_json="compact",
    ) as lab:
        await started_event_arrived(lab)
        await videoroom_flow(lab)
        await nothing_rejected(lab, "http")
        await janus_shutdown_arrives(lab)
        await nothing_rejected(lab, "http")


@pytest.mark.e2e
async def test_wsevh_delivers_a_videoroom_session_over_the_websocket(tmp_path: Path) -> None:
    """Janus's wsevh connects to the webhook path with subprotocol janus-event-handlers and
    sends every event as text frames, which the daemon applies like sampleevh POSTs."""
    name = "janus-e2e-wsevh"
    with capture_logs() as logs:
        async with janus_lab(
            tmp_path,
            name,
            daemon_yaml(name),
            evh_ws_backend="ws://{daemon}" + WEBHOOK_PATH,
            evh_json="compact",
        ) as lab:
            await started_event_arrived(lab)
            opened = [e for e in logs if e["event"] == "webhook_socket_open"]
            assert [e.get("protocol") for e in opened] == [SUBPROTOCOL], logs

            async def connected_once() -> None:  # Janus's log reaches the file a bit later
                assert janus_log(lab).count("WebSocketsEventHandler connected") == 1

            await lab.eventually(connected_once, "wsevh's connected line in the Janus log")
            await videoroom_flow(lab)
            await nothing_rejected(lab, "ws")
            await janus_shutdown_arrives(lab)
            await nothing_rejected(lab, "ws")


@pytest.mark.e2e
async def test_wsevh_reconnects_to_a_restarted_daemon(tmp_path: Path) -> None:
    """When the daemon restarts on the same port, wsevh reconnects by itself and delivers the
    events Janus queued while nothing was listening."""
    name = "janus-e2e-wsevh-restart"
    with capture_logs() as logs:
        async with janus_lab(
            tmp_path, name, daemon_yaml(name), evh_ws_backend="ws://{daemon}" + WEBHOOK_PATH
        ) as lab:
            await started_event_arrived(lab)
            await lab.stop_daemon()
            # Made while nothing listens: Janus queues these events for the next connection.
            session = await lab.api.create_session()
            handle = await lab.api.attach(session, "e2e-while-down")
            await lab.start_daemon()

            async def queued_events_delivered() -> None:
                tracked = lab.handle(session, handle)
                assert tracked is not None
                assert (tracked.plugin, tracked.opaque_id) == (VIDEOROOM, "e2e-while-down")

            await lab.eventually(queued_events_delivered, "reconnect", RECONNECT_TIMEOUT)
            opened = [e for e in logs if e["event"] == "webhook_socket_open"]
            assert [e.get("protocol") for e in opened] == [SUBPROTOCOL] * 2, logs
            log = janus_log(lab)
            assert "Connection to WebSocketsEventHandler backend closed" in log
            assert log.count("WebSocketsEventHandler connected") == 2

            # And live events keep flowing on the new connection.
            await lab.api.destroy(session)

            async def session_gone() -> None:
                assert lab.server.sessions == {}
                samples = await lab.samples()
                assert sample(samples, "janus_monitor_tracked", kind="handles") == 0

            await lab.eventually(session_gone, "session destroyed after the reconnect")
            await nothing_rejected(lab, "ws")
