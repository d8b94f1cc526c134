"""monitor.janus.admin: the Admin API client, against a fake Admin API and a real Janus 1.1.2.

The fake (an aiohttp app on 127.0.0.1:0) answers with the real Janus 1.1.2 replies recorded in
tests/fixtures/janus-1.1.2/admin/10-media, with the transaction replaced by the request's, and
records every request body it was sent and how many were in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
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
    JanusError,
    JanusRequestError,
    JanusTimeout,
    JanusUnavailable,
    PluginError,
)
from tests.conftest import (
    ADMIN_PLUGIN_FIXTURES as PLUGIN_FIXTURES,
)
from tests.conftest import (
    ADMIN_VERB_FIXTURES as VERB_FIXTURES,
)
from tests.conftest import (
    HANDLE_INFO_FULL,
    HANDLE_INFO_PLUGIN_ONLY,
    WRONG_SECRET_REPLY,
    Reply,
    TickClock,
    fixture_response,
    serve_fake_admin,
)
from tests.conftest import (
    FakeAdminServer as FakeAdmin,
)
from tests.conftest import (
    admin_fixture as fixture,
)

VIDEOROOM = "janus.plugin.videoroom"
SECRET = 'fake-admin-sëcret-"7f3a"'  # non-ASCII and a quote: it must survive JSON both ways
WRONG_SECRET = "not-the-admin-sëcret"
ROOM_SECRET = "room4321-sëcret"
SESSION_A = 3647527005210999  # the publisher's session in 10-media
HANDLE_PUB = 4725100285792786  # its VideoRoom publisher handle


@pytest.fixture
async def fake() -> AsyncIterator[FakeAdmin]:
    async with serve_fake_admin(SECRET) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class Client:
    """An AdminClient on the fake, with every RequestRecord its observer was given."""

    admin: AdminClient
    records: list[RequestRecord]


def make_client(
    http: aiohttp.ClientSession,
    url: str,
    secret: str = SECRET,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Client:
    records: list[RequestRecord] = []
    admin = AdminClient(
        http, url, Secret(secret), timeout=timeout, clock=clock, observer=records.append
    )
    return Client(admin, records)


@pytest.fixture
def client(http: aiohttp.ClientSession, fake: FakeAdmin) -> Client:
    return make_client(http, fake.url)


def busy(client: Client) -> bool:
    """client.admin.busy, read through a call so that mypy does not narrow it between reads."""
    return client.admin.busy


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    """Neither str, repr, args nor the reason of exc shows any of secrets, nor any cause."""
    shown = [str(exc), repr(exc), repr(exc.args), getattr(exc, "reason", "")]
    for secret in secrets:
        forms = {secret, orjson.dumps(secret).decode()[1:-1], json.dumps(secret)[1:-1]}
        for text in shown:
            assert not any(form in text for form in forms), text
    assert exc.__cause__ is None and exc.__context__ is None


# --- successful requests: the fixture replies parse to the right values --------------------------


async def test_info_returns_the_recorded_server_info(client: Client) -> None:
    """info() returns the whole server_info reply Janus 1.1.2 sent, answering our transaction."""
    info = await client.admin.info()
    assert {k: v for k, v in info.items() if k != "transaction"} == fixture_response(
        VERB_FIXTURES["info"]
    )
    assert (info["janus"], info["version_string"], info["server-name"]) == (
        "server_info",
        "1.1.2",
        "janus-lab-1",
    )


async def test_list_sessions_and_list_handles_return_the_ids(client: Client) -> None:
    """list_sessions() and list_handles() return the recorded ids as a list of ints."""
    sessions = await client.admin.list_sessions()
    assert sessions == fixture(VERB_FIXTURES["list_sessions"])["response"]["sessions"]
    assert sessions == [SESSION_A, 7152267511538354]
    handles = await client.admin.list_handles(SESSION_A)
    assert handles == [HANDLE_PUB]
    assert all(type(i) is int for i in sessions + handles)


async def test_handle_info_returns_the_info_object_full_and_plugin_only(
    client: Client, fake: FakeAdmin
) -> None:
    """handle_info() returns the reply's info object; plugin_only asks for (and gets) no WebRTC
    part."""
    full = await client.admin.handle_info(SESSION_A, HANDLE_PUB)
    assert full == fixture(HANDLE_INFO_FULL)["response"]["info"]
    assert {"flags", "webrtc", "sdps"} <= full.keys()
    assert full["plugin_specific"]["bitrate"] == 128000

    plugin_only = await client.admin.handle_info(SESSION_A, HANDLE_PUB, plugin_only=True)
    assert plugin_only == fixture(HANDLE_INFO_PLUGIN_ONLY)["response"]["info"]
    assert "webrtc" not in plugin_only and "flags" not in plugin_only
    assert plugin_only["plugin_specific"]["display"] == "alice"

    assert "plugin_only" not in fake.received[0]
    assert fake.received[1]["plugin_only"] is True


async def test_message_plugin_list_and_listparticipants_return_the_response(
    client: Client,
) -> None:
    """message_plugin() returns the plugin's response object for list and listparticipants."""
    listed = await client.admin.message_plugin(VIDEOROOM, {"request": "list"})
    assert listed == fixture(PLUGIN_FIXTURES["list"])["response"]["response"]
    rooms = {room["room"]: room for room in listed["list"]}
    assert (rooms[1234]["bitrate"], rooms[4321]["bitrate"]) == (256000, 128000)

    participants = await client.admin.message_plugin(
        VIDEOROOM, {"request": "listparticipants", "room": 4321}
    )
    assert participants == fixture(PLUGIN_FIXTURES["listparticipants"])["response"]["response"]
    assert [p["display"] for p in participants["participants"]] == ["alice"]


async def test_generic_request_returns_the_whole_reply(client: Client, fake: FakeAdmin) -> None:
    """request() sends any verb with extra fields and returns the whole non-error reply (for
    message_plugin too, which still raises PluginError on a plugin error)."""
    pong = await client.admin.request("ping")
    assert pong == {"janus": "pong", "transaction": fake.received[0]["transaction"]}
    status = await client.admin.request("get_status", extra=[1, 2])
    assert status["status"] == fixture(VERB_FIXTURES["get_status"])["response"]["status"]
    assert fake.received[1]["extra"] == [1, 2]
    listed = await client.admin.request(
        "message_plugin", plugin=VIDEOROOM, request={"request": "list"}
    )
    assert listed["janus"] == "success"
    assert listed["response"] == fixture(PLUGIN_FIXTURES["list"])["response"]["response"]
    with pytest.raises(PluginError):
        await client.admin.request("message_plugin", plugin=VIDEOROOM, request={"request": "kick"})
    assert [r.request for r in client.records][2:] == ["message_plugin:list", "message_plugin:kick"]


async def test_request_bodies_carry_verb_transaction_secret_and_ids(
    client: Client, fake: FakeAdmin
) -> None:
    """Every POST goes to the admin URL with janus, a fresh transaction and the admin_secret
    (info too), plus session_id / handle_id exactly when the request is about one."""
    await client.admin.info()
    await client.admin.list_sessions()
    await client.admin.list_handles(SESSION_A)
    await client.admin.handle_info(SESSION_A, HANDLE_PUB, plugin_only=True)
    await client.admin.message_plugin(VIDEOROOM, {"request": "listparticipants", "room": 4321})

    assert fake.paths == ["/admin"] * 5
    assert [b["janus"] for b in fake.received] == [
        "info",
        "list_sessions",
        "list_handles",
        "handle_info",
        "message_plugin",
    ]
    assert all(b["admin_secret"] == SECRET for b in fake.received)
    transactions = [b["transaction"] for b in fake.received]
    assert all(isinstance(t, str) and len(t) >= 16 for t in transactions)
    assert len(set(transactions)) == 5
    ids = [(b.get("session_id"), b.get("handle_id")) for b in fake.received]
    assert ids == [
        (None, None),
        (None, None),
        (SESSION_A, None),
        (SESSION_A, HANDLE_PUB),
        (None, None),
    ]
    assert fake.received[4]["plugin"] == VIDEOROOM
    assert fake.received[4]["request"] == {"request": "listparticipants", "room": 4321}


# --- Janus and plugin errors ---------------------------------------------------------------------


async def test_wrong_secret_raises_403_without_showing_the_secret(
    http: aiohttp.ClientSession, fake: FakeAdmin
) -> None:
    """A wrong admin_secret gets the real 403 reply, raised as JanusRequestError 403 with
    Janus's reason and without the secret anywhere in the exception."""
    wrong = make_client(http, fake.url, secret=WRONG_SECRET)
    with pytest.raises(JanusRequestError) as caught:
        await wrong.admin.list_sessions()
    exc = caught.value
    assert (exc.request, exc.code) == ("list_sessions", 403)
    assert exc.reason == fixture(WRONG_SECRET_REPLY)["response"]["error"]["reason"]
    assert "403" in str(exc) and exc.reason in str(exc)
    assert not isinstance(exc, JanusUnavailable)
    assert_no_secret(exc, WRONG_SECRET)
    assert WRONG_SECRET not in repr(wrong.admin)
    assert fake.received[0]["admin_secret"] == WRONG_SECRET  # it did go on the wire


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (458, "No such session 42"),  # the reasons a real Janus 1.1.2 gives (see the e2e test)
        (459, "No such handle 43 in session 42"),
    ],
)
async def test_missing_session_or_handle_raises_its_janus_code(
    client: Client, fake: FakeAdmin, code: int, reason: str
) -> None:
    """Janus's 458 (no session) and 459 (no handle) errors raise JanusRequestError with that
    code and reason."""

    def missing(body: dict[str, Any]) -> Reply:
        return {
            "janus": "error",
            "session_id": body["session_id"],
            "transaction": body["transaction"],
            "error": {"code": code, "reason": reason},
        }

    fake.reply = missing
    with pytest.raises(JanusRequestError) as caught:
        await client.admin.handle_info(42, 43)
    assert (caught.value.code, caught.value.reason, caught.value.label) == (
        code,
        reason,
        f"janus_{code}",
    )


async def test_plugin_error_in_a_core_success_raises_plugin_error(
    client: Client, fake: FakeAdmin
) -> None:
    """A kick with a wrong room secret is a core success whose response has error_code 433:
    PluginError 433 with the plugin's text, and the room secret shows nowhere."""
    body = {"request": "kick", "room": 4321, "secret": ROOM_SECRET, "id": 2244074596607377}
    with pytest.raises(PluginError) as caught:
        await client.admin.message_plugin(VIDEOROOM, body)
    exc = caught.value
    expected = fixture(PLUGIN_FIXTURES["kick"])["response"]["response"]
    assert (exc.code, exc.reason) == (expected["error_code"], expected["error"])
    assert (exc.code, exc.request) == (433, "message_plugin:kick")
    assert fake.received[0]["request"]["secret"] == ROOM_SECRET
    assert_no_secret(exc, ROOM_SECRET, SECRET)


async def test_secrets_echoed_by_a_weird_server_never_reach_the_exception(
    client: Client, fake: FakeAdmin
) -> None:
    """Replies that echo the whole request (in an error reason, a plugin error, a non-JSON body
    or the HTTP reason phrase) never put the admin_secret or a room secret into an exception."""
    kick = {"request": "kick", "room": 1, "secret": ROOM_SECRET, "id": 2}

    def echo_error(body: dict[str, Any]) -> Reply:
        echoed = json.dumps(body)  # ASCII-escaped, unlike the orjson request
        reason = f"bad {body} {echoed} {body['admin_secret']}"
        error = {"code": 490, "reason": reason}
        return {"janus": "error", "transaction": body["transaction"], "error": error}

    def echo_plugin(body: dict[str, Any]) -> Reply:
        response = {"error_code": 499, "error": f"bad {orjson.dumps(body).decode()}"}
        return {"janus": "success", "transaction": body["transaction"], "response": response}

    def echo_raw(body: dict[str, Any]) -> Reply:
        return web.Response(body=b"echo: " + orjson.dumps(body), content_type="text/plain")

    def echo_status(body: dict[str, Any]) -> Reply:
        return web.Response(status=500, reason=f"Broken {body['admin_secret']}")

    for reply in (echo_error, echo_plugin, echo_raw, echo_status):
        fake.reply = reply
        with pytest.raises(JanusError) as caught:
            await client.admin.message_plugin(VIDEOROOM, kick)
        assert_no_secret(caught.value, SECRET, ROOM_SECRET)
        assert "<redacted>" in caught.value.reason or reply is echo_raw
    assert [r.error for r in client.records] == [
        "janus_490",
        "plugin_499",
        "unavailable",
        "unavailable",
    ]


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
