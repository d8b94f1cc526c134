"""A real Janus 1.1.2 delivering its events to the real daemon, over sampleevh and over wsevh.

Each test starts the daemon in-process on a free port (one target named like Janus's
server_name), starts the Debian ``janus`` pointed at it, drives the VideoRoom plugin through
the HTTP Janus API (no media: joins without publish) and checks after every step what the
daemon made of the events Janus actually sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

import lab.janus
from lab.janus import (
    KEEP_EVENT_HANDLERS,
    WSEVH_DEFAULT_SUBPROTOCOL,
    WSEVH_JCFG,
    WSEVH_SO,
    JanusLabConfig,
    JanusProcess,
    free_ports,
)
from monitor.app import build_runtime, start
from monitor.config import Config, Secret
from monitor.janus.api import JanusClient
from monitor.state import Handle, Server
from tests.conftest import (
    Arrivals,
    Daemon,
    make_config,
    publisher_info,
    received,
    sample,
    series,
)
from tests.test_lab_janus import disabled, setting, so_names

WEBHOOK_PATH = "/events"
VIDEOROOM = "janus.plugin.videoroom"
SUBPROTOCOL = WSEVH_DEFAULT_SUBPROTOCOL  # Janus sends it; the daemon must echo it
ROOM = 4242
ROOM_CAP = 128000
POLL_TIMEOUT = 5.0  # events arrive within milliseconds; this only bounds a failing wait
RECONNECT_TIMEOUT = 12.0  # wsevh retries after 1 s, then 2, 4, 8 s
EVH_USER = "janus-evh"
EVH_PASSWORD = "e2e-evh-pässword"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- the daemon, in-process, restartable on the same port ---------------------------------------


@dataclass
class Serving:
    """The daemon listening on 127.0.0.1:port, with a client session, until ``stop()``."""

    daemon: Daemon
    runner: web.AppRunner

    @classmethod
    async def start(cls, config: Config, port: int) -> Serving:
        runtime = build_runtime(config)
        runner = await start(runtime, "127.0.0.1", port)
        http = aiohttp.ClientSession()
        return cls(Daemon(runtime, f"http://127.0.0.1:{port}", http), runner)

    async def stop(self) -> None:
        await self.daemon.http.close()
        await self.runner.cleanup()


# --- the Janus API: the daemon's own client, plus the long poll it does not do --------------


class JanusApi:
    """The daemon's JanusClient for requests; async plugin answers are long-polled here (the
    daemon never reads a session's event queue)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.client = JanusClient(http, url, Secret())

    async def create_session(self) -> int:
        return await self.client.create_session()

    async def attach(self, session: int, opaque_id: str) -> int:
        return await self.client.attach(session, VIDEOROOM, opaque_id=opaque_id)

    async def sync_message(self, session: int, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A VideoRoom request answered at once (create, destroy): its plugin data."""
        return await self.client.message(session, handle, body)

    async def async_message(
        self, session: int, handle: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A VideoRoom request acked first (join, configure, leave): the plugin data of its
        event, long-polled from the session's queue (other events there are skipped)."""
        transaction = await self.client.message_async(session, handle, body)
        for _ in range(10):
            async with self.http.get(f"{self.url}/{session}?maxev=5") as response:
                polled = await response.json(content_type=None)
            for event in polled if isinstance(polled, list) else [polled]:
                if event.get("transaction") == transaction:
                    data: dict[str, Any] = event["plugindata"]["data"]
                    assert "error" not in data, f"{body} -> {data}"
                    return data
        raise AssertionError(f"no answer to {body} in session {session}'s event queue")

    async def detach(self, session: int, handle: int) -> None:
        await self.client.detach(session, handle)

    async def destroy(self, session: int) -> None:
        await self.client.destroy(session)


# --- one lab: a daemon and a Janus wired to it ------------------------------------------------


@dataclass
class Lab:
    name: str
    config: Config
    port: int
    serving: Serving
    janus: JanusProcess
    api: JanusApi
    arrivals: Arrivals

    @property
    def daemon(self) -> Daemon:
        return self.serving.daemon

    @property
    def server(self) -> Server:
        return self.daemon.runtime.state.servers[self.name]

    def handle(self, session: int, handle: int) -> Handle | None:
        return self.server.handle((session, handle))

    async def samples(self) -> Samples:
        return await self.daemon.metrics()

    async def stop_daemon(self) -> None:
        await self.serving.stop()

    async def start_daemon(self) -> None:
        """A new daemon (fresh state) on the same port, after stop_daemon()."""
        self.serving = await Serving.start(self.config, self.port)
        self.arrivals.spy_on(self.daemon)

    async def eventually(
        self, check: Callable[[], Awaitable[None]], what: str, within: float = POLL_TIMEOUT
    ) -> float:
        """Retry an asserting check until it passes; returns how long that took. On timeout
        the last failure is raised with the events received so far (janus_lab adds the Janus
        log tail)."""
        started = time.monotonic()
        mark = len(self.arrivals.events)
        while True:
            try:
                await check()
                return time.monotonic() - started
            except AssertionError as exc:
                if time.monotonic() - started > within:
                    raise AssertionError(
                        f"{what}: still failing after {within:.1f}s: {exc}\n"
                        f"events received ({len(self.arrivals.events)}): {self.arrivals.events}\n"
                        f"since this step began: {self.arrivals.since(mark)}"
                    ) from exc
            await asyncio.sleep(0.02)


@asynccontextmanager
async def janus_lab(
    tmp_path: Path, name: str, daemon_config: str, **janus_settings: Any
) -> AsyncIterator[Lab]:
    """The daemon on a free port, then Janus (free ports) with ``janus_settings``, whose
    ``{daemon}`` placeholders in evh_backend / evh_ws_backend become the daemon's host:port.
    Janus is always stopped first, then the daemon. Whatever fails inside the block gets the
    Janus log tail (as it was at the failure) as an exception note."""
    binary = lab.janus.require_janus()
    daemon_port, http_port, admin_port, ws_port = free_ports(4)
    for key in ("evh_backend", "evh_ws_backend"):
        if key in janus_settings:
            janus_settings[key] = janus_settings[key].format(daemon=f"127.0.0.1:{daemon_port}")
    cfg = JanusLabConfig(
        server_name=name,
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
        **janus_settings,
    )
    lab.janus.write_janus_config(tmp_path / "conf", cfg)
    config = make_config(daemon_config)
    janus = JanusProcess(cfg, binary=binary)
    arrivals = Arrivals()
    serving = await Serving.start(config, daemon_port)
    arrivals.spy_on(serving.daemon)
    http = aiohttp.ClientSession()
    the_lab = Lab(
        name, config, daemon_port, serving, janus, JanusApi(cfg.janus_url, http), arrivals
    )
    try:
        # In a thread: the daemon shares this event loop and must take the startup events.
        await asyncio.to_thread(janus.start, tmp_path / "conf", tmp_path / "janus.log")
        yield the_lab
    except Exception as exc:
        exc.add_note(f"Janus log tail ({janus.log_path}):\n{janus.log_tail(40)}")
        raise
    finally:
        try:
            await asyncio.to_thread(janus.stop)
        finally:
            await http.close()
            await the_lab.serving.stop()


def janus_log(lab: Lab) -> str:
    assert lab.janus.log_path is not None
    return lab.janus.log_path.read_text(encoding="utf-8", errors="replace")


def daemon_yaml(name: str, basic_auth: bool = False) -> str:
    lines = [f"webhook: {{path: {WEBHOOK_PATH}}}", f"targets: [{{name: {name}}}]"]
    if basic_auth:
        lines[0] = (
            f"webhook: {{path: {WEBHOOK_PATH}, basic_auth: "
            f'{{username: {EVH_USER}, password: "{EVH_PASSWORD}"}}}}'
        )
    return "\n".join(lines) + "\n"


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


def test_wsevh_config_is_written_and_loaded_only_with_a_ws_backend(tmp_path: Path) -> None:
    """evh_ws_backend writes an enabled wsevh config (events, grouping, json, backend; Janus's
    default subprotocol) and loads libjanus_wsevh.so; without it the file and the .so go."""
    cfg = JanusLabConfig(
        server_name="lab-wsevh",
        evh_ws_backend="ws://127.0.0.1:9/events",
        evh_events="plugins,core",
        evh_grouping=False,
        evh_json="plain",
    )
    conf = tmp_path / "conf"
    text = lab.janus.write_janus_config(conf, cfg).read_text()
    assert disabled(text, "events") == so_names("events") - KEEP_EVENT_HANDLERS - {WSEVH_SO}
    ws = (conf / WSEVH_JCFG).read_text()
    assert setting(ws, "general", "enabled") == "true"
    assert setting(ws, "general", "backend") == '"ws://127.0.0.1:9/events"'
    assert setting(ws, "general", "events") == '"plugins,core"'
    assert setting(ws, "general", "grouping") == "false"
    assert setting(ws, "general", "json") == '"plain"'
    assert setting(ws, "general", "subprotocol") is None  # wsevh's default: janus-event-handlers
    assert setting((conf / "janus.eventhandler.sampleevh.jcfg").read_text(), "general", "enabled")

    custom = replace(cfg, evh_ws_subprotocol="x-evh")
    lab.janus.write_janus_config(conf, custom)
    assert setting((conf / WSEVH_JCFG).read_text(), "general", "subprotocol") == '"x-evh"'

    plain = replace(cfg, evh_ws_backend=None, evh_ws_subprotocol=None)
    text = lab.janus.write_janus_config(conf, plain).read_text()
    assert disabled(text, "events") == so_names("events") - KEEP_EVENT_HANDLERS
    assert not (conf / WSEVH_JCFG).exists()  # the earlier generated one is removed

    (conf / WSEVH_JCFG).write_text("general: {}\n")  # not ours: left alone
    lab.janus.write_janus_config(conf, plain)
    assert (conf / WSEVH_JCFG).read_text() == "general: {}\n"

    with pytest.raises(ValueError, match="evh_ws_backend"):
        JanusLabConfig(server_name="x", evh_ws_backend="http://127.0.0.1:9/events")
    with pytest.raises(ValueError, match="evh_ws_subprotocol"):
        JanusLabConfig(server_name="x", evh_ws_subprotocol="x-evh")


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
            assert janus_log(lab).count("WebSocketsEventHandler connected") == 1
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
