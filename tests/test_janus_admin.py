"""monitor.janus.admin: the Admin API client, against a fake Admin API and a real Janus 1.1.2.

The fake (an aiohttp app on 127.0.0.1:0) answers with the real Janus 1.1.2 replies recorded in
tests/fixtures/janus-1.1.2/admin/10-media, with the transaction replaced by the request's, and
records every request body it was sent and how many were in flight at once.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from monitor.janus.errors import (
    JanusError,
    JanusRequestError,
    JanusUnavailable,
    PluginError,
)
from tests.conftest import SECRET, Client, make_client
from tests.fakes import ADMIN_PLUGIN_FIXTURES as PLUGIN_FIXTURES
from tests.fakes import ADMIN_VERB_FIXTURES as VERB_FIXTURES
from tests.fakes import (
    HANDLE_INFO_FULL,
    HANDLE_INFO_PLUGIN_ONLY,
    WRONG_SECRET_REPLY,
    Reply,
    fixture_response,
)
from tests.fakes import FakeAdminServer as FakeAdmin
from tests.fakes import admin_fixture as fixture

VIDEOROOM = "janus.plugin.videoroom"
WRONG_SECRET = "not-the-admin-sëcret"
ROOM_SECRET = "room4321-sëcret"
SESSION_A = 3647527005210999  # the publisher's session in 10-media
HANDLE_PUB = 4725100285792786  # its VideoRoom publisher handle


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
