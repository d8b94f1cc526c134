"""monitor.janus.api: the Janus API client against a real Janus 1.1.2 with an api_secret."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from lab.janus import JanusLabConfig, JanusProcess, free_ports, require_janus, write_janus_config
from monitor.config import Secret
from monitor.janus.api import JanusClient
from monitor.janus.errors import JanusRequestError, JanusUnavailable, PluginError
from monitor.janus.wire import RequestRecord

API_SECRET = 'api "secret" ünïcode\\'
VIDEOROOM = "janus.plugin.videoroom"


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[JanusLabConfig]:
    require_janus()
    http_port, admin_port, ws_port = free_ports(3)
    cfg = JanusLabConfig(
        server_name="janus-api-test",
        api_secret=API_SECRET,
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
    )
    write_janus_config(tmp_path / "conf", cfg)
    process = await asyncio.to_thread(
        JanusProcess(cfg).start, tmp_path / "conf", tmp_path / "janus.log"
    )
    try:
        yield cfg
    finally:
        await asyncio.to_thread(process.stop)


@pytest.mark.e2e
async def test_sessions_handles_and_messages_on_a_real_janus(janus: JanusLabConfig) -> None:
    """create, attach, keepalive, a sync VideoRoom list, an async configure (acked), a plugin
    error, detach and destroy all work with the apisecret, and each is observed once."""
    records: list[RequestRecord] = []
    async with aiohttp.ClientSession() as http:
        client = JanusClient(http, janus.janus_url, Secret(API_SECRET), observer=records.append)
        session = await client.create_session()
        handle = await client.attach(session, VIDEOROOM, opaque_id="janus-monitor")
        await client.keepalive(session)
        listed = await client.message(session, handle, {"request": "list"})
        assert [room["room"] for room in listed["list"]] == [1234]
        transaction = await client.message_async(session, handle, {"request": "configure"})
        assert transaction  # acked; the answer (424, not joined) goes to the session's queue
        with pytest.raises(PluginError) as no_room:
            await client.message(session, handle, {"request": "exists"})
        assert no_room.value.code == 429  # the room is a required element
        with pytest.raises(JanusRequestError) as no_session:
            await client.keepalive(session + 1)
        assert no_session.value.code == 458
        await client.detach(session, handle)
        await client.destroy(session)
    assert [(r.request, r.error) for r in records] == [
        ("create", None),
        ("attach", None),
        ("keepalive", None),
        ("message:list", None),
        ("message:configure", None),
        ("message:exists", "plugin_429"),
        ("keepalive", "janus_458"),
        ("detach", None),
        ("destroy", None),
    ]


@pytest.mark.e2e
async def test_a_wrong_apisecret_is_403_and_never_shown(janus: JanusLabConfig) -> None:
    """Without the right apisecret Janus answers 403; the error text holds no secret."""
    async with aiohttp.ClientSession() as http:
        wrong = JanusClient(http, janus.janus_url, Secret("not-" + API_SECRET))
        with pytest.raises(JanusRequestError) as refused:
            await wrong.create_session()
        assert refused.value.code == 403
        assert API_SECRET not in str(refused.value) and "not-" not in str(refused.value)
        with pytest.raises(ValueError, match="apisecret"):
            await wrong.attach(1, VIDEOROOM, apisecret="x")  # the client sets it itself


@pytest.mark.e2e
async def test_an_unreachable_janus_is_unavailable() -> None:
    """A closed port is JanusUnavailable, labelled for the Janus API."""
    (port,) = free_ports(1)
    async with aiohttp.ClientSession() as http:
        client = JanusClient(http, f"http://127.0.0.1:{port}/janus", Secret(), timeout=1.0)
        with pytest.raises(JanusUnavailable) as down:
            await client.create_session()
    assert down.value.label == "unavailable"
    assert str(down.value).startswith("Janus API create: ")
