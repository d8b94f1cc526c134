"""The webhook receiver over WebSocket (wsevh): frames acked and applied, limits, credentials."""

from __future__ import annotations

from functools import partial

import aiohttp
import orjson
import pytest

from tests.conftest import (
    Daemon,
    body_paths,
    eventually,
    items_of,
    make_config,
    rejected_delta,
    rejections_moved,
    run_daemon,
)
from tests.test_ingest import BODY, SERVER, SUBPROTOCOL, basic

# --- WebSocket (wsevh) ---------------------------------------------------------------------


async def test_websocket_frames_are_acked_and_applied(daemon: Daemon) -> None:
    """Over a janus-event-handlers WebSocket each fixture frame is acked with its counts and
    lands in state; a malformed frame gets an error and the socket stays open."""
    url = daemon.url("/events")
    before = await daemon.metrics()
    async with daemon.http.ws_connect(url, protocols=(SUBPROTOCOL,)) as ws:
        assert ws.protocol == SUBPROTOCOL
        for path in body_paths("10-media")[:33]:
            await ws.send_str(path.read_text())
            ack = await ws.receive_json(timeout=5)
            assert ack == {"accepted": len(items_of(path)), "rejected": 0}, path
        await ws.send_str('[{"emitter": ')
        answer = await ws.receive_json(timeout=5)
        assert set(answer) == {"error"}
        assert answer["error"]
        await ws.send_str("17")
        assert set(await ws.receive_json(timeout=5)) == {"error"}
        last = body_paths("10-media")[33]
        await ws.send_bytes(last.read_bytes())
        assert await ws.receive_json(timeout=5) == {"accepted": len(items_of(last)), "rejected": 0}
        assert not ws.closed
    after = await daemon.metrics()
    assert rejected_delta(before, after) == {"malformed_json": 1, "bad_body": 1}
    publishers = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert [(p["publisher"], p["display"]) for p in publishers] == [("2244074596607377", "alice")]


async def test_websocket_frame_over_limit_closes_with_1009() -> None:
    """A frame bigger than max_body_bytes closes the socket with 1009 and counts too_large."""
    config = make_config(f"webhook: {{max_body_bytes: 4096}}\ntargets: [{{name: {SERVER}}}]")
    async for daemon in run_daemon(config):
        before = await daemon.metrics()
        async with daemon.http.ws_connect(daemon.url("/events"), protocols=(SUBPROTOCOL,)) as ws:
            await ws.send_str("[" + " " * 5000 + "]")
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        assert await eventually(partial(rejections_moved, daemon, before))
        assert rejected_delta(before, await daemon.metrics()) == {"too_large": 1}


async def test_websocket_upgrade_needs_credentials() -> None:
    """With basic_auth configured, an upgrade without credentials is refused with 401."""
    config = make_config(
        "webhook: {basic_auth: {username: evhuser, password: evhpass}}\n"
        f"targets: [{{name: {SERVER}}}]"
    )
    async for daemon in run_daemon(config):
        url = daemon.url("/events")
        before = await daemon.metrics()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await daemon.http.ws_connect(url, protocols=(SUBPROTOCOL,))
        assert refused.value.status == 401
        assert refused.value.headers is not None
        assert refused.value.headers["WWW-Authenticate"].startswith("Basic ")
        assert rejected_delta(before, await daemon.metrics()) == {"unauthorized": 1}
        headers = {"Authorization": basic("evhuser", "evhpass")}
        async with daemon.http.ws_connect(url, protocols=(SUBPROTOCOL,), headers=headers) as ws:
            await ws.send_bytes(BODY)
            assert await ws.receive_json(timeout=5) == {"accepted": 1, "rejected": 0}


async def test_plain_get_on_webhook_path_is_400(daemon: Daemon) -> None:
    """A GET on the webhook path without a WebSocket upgrade answers 400 with a JSON error."""
    async with daemon.http.get(daemon.url("/events")) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        answer = await response.json()
    assert set(answer) == {"error"}
    assert "WebSocket" in answer["error"]


async def test_a_body_with_too_many_events_is_refused(daemon: Daemon) -> None:
    """More events in one body than the per-body cap is 413 too_large, nothing applied."""
    from monitor.ingest.body import MAX_ITEMS

    item = {"emitter": SERVER, "type": 1, "session_id": 5, "event": {"name": "created"}}
    status, reply, _ = await daemon.post_events(orjson.dumps([item] * (MAX_ITEMS + 1)))
    assert status == 413
    assert f"at most {MAX_ITEMS}" in reply["error"]
    assert 5 not in daemon.runtime.state.servers[SERVER].sessions


async def test_a_decoder_bug_loses_the_item_not_the_batch(daemon: Daemon) -> None:
    """An item that makes the decoder fail unexpectedly is rejected; its batch mates are kept."""
    good = {"emitter": SERVER, "type": 1, "session_id": 6, "event": {"name": "created"}}
    layers = [{"mid": "0", "media": "video-sim²"}, {"mid": "1", "media": "video-sim" + "9" * 5000}]
    odd = {"emitter": SERVER, "type": 32, "subtype": 3, "session_id": 6, "handle_id": 7,
           "event": layers}  # fmt: skip
    status, reply, _ = await daemon.post_events(orjson.dumps([good, odd]))
    assert status == 200 and reply["accepted"] == 2, reply
    assert 6 in daemon.runtime.state.servers[SERVER].sessions
