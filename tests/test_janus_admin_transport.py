"""monitor.janus.admin on the wire: no usable answer, one request at a time, the observer,
and a real Janus 1.1.2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from lab.janus import JanusLabConfig, JanusProcess, free_port, free_ports, require_janus
from lab.janus import write_janus_config as write_lab_config
from monitor.config import Secret
from monitor.janus.admin import AdminClient, RequestRecord
from monitor.janus.errors import (
    JanusRequestError,
    JanusTimeout,
    JanusUnavailable,
    PluginError,
)
from tests.conftest import Client, make_client
from tests.fakes import FakeAdminServer as FakeAdmin
from tests.fakes import (
    Reply,
    TickClock,
)
from tests.test_janus_admin import (
    HANDLE_PUB,
    SESSION_A,
    VIDEOROOM,
    WRONG_SECRET,
    assert_no_secret,
    busy,
)

# --- no usable answer ----------------------------------------------------------------------------


async def test_server_that_never_answers_raises_admin_timeout(
    http: aiohttp.ClientSession, fake: FakeAdmin
) -> None:
    """A server that accepts the request but never answers raises JanusTimeout after about the
    configured timeout."""
    fake.reply = lambda body: None
    slow = make_client(http, fake.url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(JanusTimeout) as caught:
        await slow.admin.info()
    elapsed = time.monotonic() - started
    assert 0.28 <= elapsed < 1.0
    assert isinstance(caught.value, JanusUnavailable) and caught.value.code is None
    assert "0.3s" in caught.value.reason
    assert slow.records[0].error == "timeout"
    assert 0.28 <= slow.records[0].duration < 1.0
    assert not slow.admin.busy


async def test_body_that_stops_halfway_raises_admin_timeout(
    http: aiohttp.ClientSession, fake: FakeAdmin
) -> None:
    """Headers and half a body followed by silence also end in JanusTimeout: the timeout
    covers reading the body."""

    async def half_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b'{"janus": "succ')
        await fake.release.wait()
        return response

    app = web.Application()
    app.router.add_post("/admin", half_body)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        slow = make_client(http, f"http://{host}:{port}/admin", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(JanusTimeout):
            await slow.admin.info()
        assert 0.28 <= time.monotonic() - started < 1.0
    finally:
        fake.release.set()
        await runner.cleanup()


async def test_connection_refused_raises_admin_unavailable(http: aiohttp.ClientSession) -> None:
    """Nothing listening on the port raises JanusUnavailable (not a timeout) at once."""
    refused = make_client(http, f"http://127.0.0.1:{free_port()}/admin")
    started = time.monotonic()
    with pytest.raises(JanusUnavailable) as caught:
        await refused.admin.list_sessions()
    assert time.monotonic() - started < 1.0
    assert not isinstance(caught.value, JanusTimeout)
    assert caught.value.code is None and caught.value.reason
    assert [(r.request, r.error) for r in refused.records] == [("list_sessions", "unavailable")]


def _text(body: bytes, status: int = 200) -> Callable[[dict[str, Any]], Reply]:
    return lambda request: web.Response(body=body, status=status, content_type="text/html")


def _json(make: Callable[[str], Any]) -> Callable[[dict[str, Any]], Reply]:
    return lambda request: web.Response(
        body=orjson.dumps(make(request["transaction"])), content_type="application/json"
    )


def _ok(**fields: Any) -> Callable[[dict[str, Any]], Reply]:
    return _json(lambda tx: {"janus": "success", "transaction": tx, **fields})


MALFORMED: list[tuple[str, str, Callable[[dict[str, Any]], Reply], str]] = [
    ("not JSON", "info", _text(b"<html>Bad Gateway</html>"), r"not JSON"),
    ("HTTP 500", "info", _text(b'{"janus": "server_info"}', 500), r"HTTP 500"),
    ("HTTP 404", "info", _text(b"no such path", 404), r"HTTP 404"),
    ("redirect", "info", lambda r: web.Response(status=302, headers={"Location": "/"}), "HTTP 302"),
    ("JSON array", "info", _json(lambda tx: [{"janus": "server_info"}]), r"array"),
    ("no janus", "info", _json(lambda tx: {"transaction": tx, "name": "x"}), r"janus"),
    ("other transaction", "info", _json(lambda tx: {"janus": "pong", "transaction": "x"}), "trans"),
    ("no transaction", "info", _json(lambda tx: {"janus": "server_info"}), r"transaction"),
    ("not server_info", "info", _ok(), r"not server_info"),
    ("error no code", "info", _json(lambda tx: {"janus": "error", "transaction": tx}), r"code"),
    ("sessions missing", "list_sessions", _ok(), r"sessions .*not a list"),
    ("sessions str", "list_sessions", _ok(sessions=["1"]), r"sessions holds a string"),
    ("sessions bool", "list_sessions", _ok(sessions=[1, True]), r"sessions holds a boolean"),
    ("sessions float", "list_sessions", _ok(sessions=[1.5]), r"sessions holds a number"),
    ("sessions zero", "list_sessions", _ok(sessions=[0]), r"positive"),
    ("handles object", "list_handles", _ok(handles={"1": 2}), r"handles is an object"),
    ("info missing", "handle_info", _ok(), r"info is missing"),
    ("response missing", "message_plugin", _ok(), r"response is missing"),
]


@pytest.mark.parametrize(
    ("verb", "reply", "reason"),
    [pytest.param(verb, reply, reason, id=name) for name, verb, reply, reason in MALFORMED],
)
async def test_malformed_replies_raise_admin_unavailable(
    client: Client,
    fake: FakeAdmin,
    verb: str,
    reply: Callable[[dict[str, Any]], Reply],
    reason: str,
) -> None:
    """A reply that is not a 200 JSON object answering our transaction, or not shaped as the
    verb promises, raises JanusUnavailable saying what was wrong, and is recorded so."""
    fake.reply = reply
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "info": client.admin.info,
        "list_sessions": client.admin.list_sessions,
        "list_handles": lambda: client.admin.list_handles(SESSION_A),
        "handle_info": lambda: client.admin.handle_info(SESSION_A, HANDLE_PUB),
        "message_plugin": lambda: client.admin.message_plugin(VIDEOROOM, {"request": "list"}),
    }
    with pytest.raises(JanusUnavailable, match=reason) as caught:
        await calls[verb]()
    assert type(caught.value) is JanusUnavailable and caught.value.code is None
    assert caught.value.__context__ is None
    assert [r.error for r in client.records] == ["unavailable"]


# --- one request at a time, and what the observer is told -----------------------------------------


async def test_concurrent_requests_never_overlap_at_the_server(
    client: Client, fake: FakeAdmin
) -> None:
    """Five concurrent calls on one client reach the server one at a time, and busy is true
    exactly while one is outstanding."""
    fake.delay = 0.03
    assert not client.admin.busy
    calls = asyncio.gather(
        client.admin.info(),
        client.admin.list_sessions(),
        client.admin.list_handles(SESSION_A),
        client.admin.handle_info(SESSION_A, HANDLE_PUB, plugin_only=True),
        client.admin.message_plugin(VIDEOROOM, {"request": "list"}),
    )
    await asyncio.sleep(0.01)
    assert busy(client)
    results = await calls
    assert results[1] == [SESSION_A, 7152267511538354]
    assert (fake.max_in_flight, len(fake.received)) == (1, 5)
    assert not client.admin.busy


async def test_observer_durations_exclude_waiting_for_the_lock(
    client: Client, fake: FakeAdmin
) -> None:
    """Two concurrent requests to a server taking 0.2 s each are recorded as about 0.2 s each
    (not 0.4 s for the one that waited), the second sent after the first was answered."""
    fake.delay = 0.2
    started = time.monotonic()
    await asyncio.gather(client.admin.info(), client.admin.list_sessions())
    assert time.monotonic() - started >= 0.4
    first, second = client.records
    assert 0.19 <= first.duration < 0.35
    assert 0.19 <= second.duration < 0.35
    assert second.started >= first.started + first.duration
    assert fake.max_in_flight == 1


async def test_observer_gets_one_record_per_request_with_labels(
    http: aiohttp.ClientSession, fake: FakeAdmin
) -> None:
    """The observer gets exactly one record per request, success or failure, labelled with the
    verb (message_plugin with the plugin request) and the error label, timed by the given
    clock around the HTTP exchange."""
    clock = TickClock()
    fake.clock, fake.clock_step = clock, 2.5  # each request "takes" 2.5 clock seconds
    timed = make_client(http, fake.url, clock=clock)
    wrong = make_client(http, fake.url, secret=WRONG_SECRET, clock=clock)
    await timed.admin.info()
    await timed.admin.list_sessions()
    await timed.admin.handle_info(SESSION_A, HANDLE_PUB, plugin_only=True)
    await timed.admin.message_plugin(VIDEOROOM, {"request": "list"})
    with pytest.raises(PluginError):
        await timed.admin.message_plugin(VIDEOROOM, {"request": "kick", "room": 1, "id": 2})
    with pytest.raises(JanusRequestError):
        await wrong.admin.list_handles(SESSION_A)
    assert [(r.request, r.error) for r in timed.records] == [
        ("info", None),
        ("list_sessions", None),
        ("handle_info", None),
        ("message_plugin:list", None),
        ("message_plugin:kick", "plugin_433"),
    ]
    assert [(r.request, r.error) for r in wrong.records] == [("list_handles", "janus_403")]
    records = timed.records + wrong.records
    assert [r.started for r in records] == [500.0 + 2.5 * i for i in range(6)]
    assert [r.duration for r in records] == [2.5] * 6


async def test_cancelled_request_is_recorded_and_frees_the_client(
    client: Client, fake: FakeAdmin
) -> None:
    """A request the caller cancels is recorded once as cancelled, and the next request on the
    same client goes out at once."""
    fake.reply = lambda body: None
    pending = asyncio.create_task(client.admin.info())
    await asyncio.sleep(0.05)
    assert busy(client)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert not busy(client)
    fake.reply = fake.janus_reply
    assert await client.admin.list_sessions() == [SESSION_A, 7152267511538354]
    assert [(r.request, r.error) for r in client.records] == [
        ("info", "cancelled"),
        ("list_sessions", None),
    ]


async def test_fields_the_client_owns_are_refused(client: Client, fake: FakeAdmin) -> None:
    """Passing janus, transaction or admin_secret as extra fields, or a handle without its
    session, is a ValueError and nothing is sent."""
    with pytest.raises(ValueError, match="transaction"):
        await client.admin.request("list_sessions", transaction="mine")
    with pytest.raises(ValueError, match="admin_secret"):
        await client.admin.request("list_sessions", admin_secret="other")
    with pytest.raises(ValueError, match="session_id"):
        await client.admin.request("handle_info", handle_id=HANDLE_PUB)
    assert fake.received == [] and client.records == []


# --- a real Janus 1.1.2 ------------------------------------------------------------------------


async def janus_api(http: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> int:
    """A Janus API request (create / attach) through the HTTP transport: the new id."""
    async with http.post(url, json={**payload, "transaction": "e2e-admin"}) as response:
        answer = await response.json()
    assert answer.get("janus") == "success", answer
    return int(answer["data"]["id"])


@pytest.mark.e2e
async def test_against_a_real_janus(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """A real Janus 1.1.2 answers every client call as documented: info, session and handle
    lists that follow the Janus API, handle_info, VideoRoom list/kick, 458/459 and 403."""
    require_janus()
    http_port, admin_port, ws_port = free_ports(3)
    name = "janus-e2e-admin"
    cfg = JanusLabConfig(
        server_name=name,
        admin_secret='e2e "admin" sëcret\\',  # JSON and libconfig escaping both matter
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
    )
    write_lab_config(tmp_path / "conf", cfg)
    janus = await asyncio.to_thread(
        JanusProcess(cfg).start, tmp_path / "conf", tmp_path / "janus.log"
    )
    try:
        records: list[RequestRecord] = []
        admin = AdminClient(http, cfg.admin_url, Secret(cfg.admin_secret), observer=records.append)

        info = await admin.info()
        assert (info["janus"], info["version_string"], info["server-name"]) == (
            "server_info",
            "1.1.2",
            name,
        )
        assert await admin.list_sessions() == []

        session = await janus_api(http, cfg.janus_url, {"janus": "create"})
        assert await admin.list_sessions() == [session]
        assert await admin.list_handles(session) == []
        handle = await janus_api(
            http, f"{cfg.janus_url}/{session}", {"janus": "attach", "plugin": VIDEOROOM}
        )
        assert await admin.list_handles(session) == [handle]

        plugin_only = await admin.handle_info(session, handle, plugin_only=True)
        assert (plugin_only["session_id"], plugin_only["handle_id"]) == (session, handle)
        assert plugin_only["plugin"] == VIDEOROOM
        assert plugin_only["plugin_specific"] == {"hangingup": 0, "destroyed": 0}  # not joined
        assert "flags" not in plugin_only
        full = await admin.handle_info(session, handle)
        assert "flags" in full and full["plugin"] == VIDEOROOM

        listed = await admin.message_plugin(VIDEOROOM, {"request": "list"})
        rooms = {room["room"]: room for room in listed["list"]}
        assert list(rooms) == [1234]
        assert (rooms[1234]["bitrate"], rooms[1234]["max_publishers"]) == (256000, 6)
        participants = await admin.message_plugin(
            VIDEOROOM, {"request": "listparticipants", "room": 1234}
        )
        assert participants["participants"] == []

        with pytest.raises(PluginError) as plugin_error:
            await admin.message_plugin(VIDEOROOM, {"request": "kick", "room": 9999, "id": 1})
        assert (plugin_error.value.code, plugin_error.value.reason) == (426, "No such room (9999)")
        with pytest.raises(JanusRequestError) as no_session:
            await admin.list_handles(42)
        assert (no_session.value.code, no_session.value.reason) == (458, "No such session 42")
        with pytest.raises(JanusRequestError) as no_handle:
            await admin.handle_info(session, 43)
        assert no_handle.value.code == 459
        assert no_handle.value.reason == f"No such handle 43 in session {session}"

        wrong = AdminClient(http, cfg.admin_url, Secret(WRONG_SECRET))
        assert (await wrong.info())["server-name"] == name  # info needs no secret
        with pytest.raises(JanusRequestError) as unauthorized:
            await wrong.list_sessions()
        assert unauthorized.value.code == 403
        assert_no_secret(unauthorized.value, WRONG_SECRET, cfg.admin_secret)

        assert [(r.request, r.error) for r in records] == [
            ("info", None),
            ("list_sessions", None),
            ("list_sessions", None),
            ("list_handles", None),
            ("list_handles", None),
            ("handle_info", None),
            ("handle_info", None),
            ("message_plugin:list", None),
            ("message_plugin:listparticipants", None),
            ("message_plugin:kick", "plugin_426"),
            ("list_handles", "janus_458"),
            ("handle_info", "janus_459"),
        ]
        assert all(0 <= r.duration < 1.0 for r in records)
    finally:
        await asyncio.to_thread(janus.stop)
