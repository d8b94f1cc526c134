"""Issue 12's hostile requests, byte for byte: each answer, counter and the daemon's health."""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import zlib
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from lab.rawhttp import raw_http, raw_post
from monitor.ingest.body import MAX_VALUES
from monitor.logs import configure_logging
from monitor.state.model import MAX_STREAMS_PER_HANDLE
from tests.conftest import (
    Daemon,
    Samples,
    make_config,
    rejected_delta,
    reset_peak_rss,
    run_daemon,
    sample,
    series,
    vm_bytes,
)

SERVER = "janus-lab-1"
REQUESTS = "janus_monitor_webhook_requests_total"


def get(path: str, *headers: bytes) -> bytes:
    head = b"".join(h + b"\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + head + b"\r\n"


def ws_upgrade(key: bytes, *headers: bytes) -> bytes:
    return get(
        "/events",
        b"Connection: Upgrade",
        b"Upgrade: websocket",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Protocol: janus-event-handlers",
        b"Sec-WebSocket-Key: " + key,
        *headers,
    )


def configured(**data: Any) -> dict[str, Any]:
    return {
        "emitter": SERVER, "type": 64, "timestamp": 1, "session_id": 11, "handle_id": 22,
        "event": {"plugin": "janus.plugin.videoroom",
                  "data": {"event": "configured", "room": 1234, "id": 42, **data}},
    }  # fmt: skip


def joined(room: int, publisher: int, session: int) -> dict[str, Any]:
    return {
        "emitter": SERVER, "type": 64, "timestamp": 1, "session_id": session, "handle_id": 1,
        "event": {"plugin": "janus.plugin.videoroom",
                  "data": {"event": "joined", "room": room, "id": publisher, "display": "d"}},
    }  # fmt: skip


def requests_delta(before: Samples, after: Samples, transport: str, code: int) -> float:
    labels = {"transport": transport, "code": str(code)}
    return (sample(after, REQUESTS, **labels) or 0.0) - (sample(before, REQUESTS, **labels) or 0)


async def healthy(daemon: Daemon) -> None:
    """The daemon still serves every endpoint with a normal answer."""
    for path in (
        "/-/healthy",
        "/metrics",
        "/api/v1/servers",
        "/api/v1/rooms",
        "/api/v1/publishers",
    ):
        async with daemon.http.get(daemon.url(path)) as response:
            assert response.status == 200, path
    status, answer, _ = await daemon.post_events(orjson.dumps(configured(bitrate=128000)))
    assert (status, answer) == (200, {"accepted": 1, "rejected": 0})


# --- 1. a non-UTF-8 Content-Encoding ---------------------------------------------------------


async def test_non_utf8_content_encoding_is_415_and_logged(daemon: Daemon) -> None:
    """A Content-Encoding byte 0xff gets 415 JSON (not 500), counted, and its log line is
    written by the JSON renderer with the byte escaped."""
    configure_logging("info", "json")
    before = await daemon.metrics()
    answer = await raw_http(daemon.base, raw_post("/events", b"{}", b"Content-Encoding: \xff"))
    assert answer.status == 415
    assert "unsupported Content-Encoding" in answer.json()["error"]
    after = await daemon.metrics()
    assert rejected_delta(before, after) == {"unsupported_encoding": 1}
    assert requests_delta(before, after, "http", 415) == 1
    await healthy(daemon)


def test_json_log_lines_survive_what_orjson_refuses() -> None:
    """Lone surrogates, integers past 64 bits and non-str keys are written, not raised."""
    from monitor.logs import _json_bytes, loggable

    line = orjson.loads(_json_bytes({"encoding": "\udcff", "n": 10**30, "m": {1: ["\ud800"]}}))
    assert line == {"encoding": "\\udcff", "n": str(10**30), "m": {"1": ["\\ud800"]}}
    assert loggable(object.__new__(type("Odd", (), {"__str__": lambda self: 1 / 0}))) == (
        "<unprintable Odd>"
    )


# --- 2. a WebSocket upgrade with a key that is not ASCII -------------------------------------


async def test_websocket_key_not_ascii_is_400_json(daemon: Daemon) -> None:
    """Sec-WebSocket-Key 0xff 0xff gets 400 JSON, counted as a ws 400, not a 500."""
    before = await daemon.metrics()
    answer = await raw_http(daemon.base, ws_upgrade(b"\xff\xff"))
    assert answer.status == 400
    assert answer.json() == {"error": "invalid WebSocket handshake headers"}
    assert requests_delta(before, await daemon.metrics(), "ws", 400) == 1
    await healthy(daemon)


async def test_websocket_credentials_are_checked_before_the_handshake() -> None:
    """With basic_auth, the same broken upgrade without credentials gets 401: the handshake
    is not even read."""
    config = make_config(
        f"webhook: {{basic_auth: {{username: u, password: p}}}}\ntargets: [{{name: {SERVER}}}]"
    )
    async for daemon in run_daemon(config):
        before = await daemon.metrics()
        answer = await raw_http(daemon.base, ws_upgrade(b"\xff\xff"))
        assert answer.status == 401
        assert answer.headers["www-authenticate"].startswith("Basic ")
        assert rejected_delta(before, await daemon.metrics()) == {"unauthorized": 1}
        authorization = b"Authorization: Basic " + base64.b64encode(b"u:p")
        answer = await raw_http(daemon.base, ws_upgrade(b"\xff\xff", authorization))
        assert answer.status == 400


# --- 3. integers past 64 bits ----------------------------------------------------------------


async def test_bitrate_1e308_does_not_poison_the_api(daemon: Daemon) -> None:
    """A `configured` with bitrate 1e308 is accepted without its bitrate, and the API still
    answers; a 64-bit float bitrate is kept."""
    status, answer, _ = await daemon.post_events(orjson.dumps(configured(bitrate=1e308)))
    assert (status, answer) == (200, {"accepted": 1, "rejected": 0})
    publishers = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert [(p["publisher"], p["bitrate_limit"]) for p in publishers] == [("42", None)]
    rooms = (await daemon.get_json("/api/v1/rooms"))["rooms"]
    assert [(r["room"], r["bitrate_cap"]) for r in rooms] == [("1234", None)]
    await daemon.post_events(orjson.dumps(configured(bitrate=5e5)))
    publishers = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert publishers[0]["bitrate_limit"] == 500000


# --- 4. a deeply nested opaque_id ------------------------------------------------------------


def nested_opaque(depth: int) -> bytes:
    """A configured event whose opaque_id is ``depth`` nested arrays (spliced in as text:
    orjson writes at most 255 levels)."""
    item = orjson.dumps(configured(bitrate=1000))
    return item.replace(
        b'"emitter"', b'"opaque_id":' + b"[" * depth + b"1" + b"]" * depth + b',"emitter"'
    )


async def test_nested_opaque_id_is_dropped_not_stringified(daemon: Daemon) -> None:
    """500 items with a 1000-deep opaque_id are accepted without it: no traceback, one
    unknown-field note each; 10 000 of them are refused as too many JSON values."""
    body = b"[" + b",".join([nested_opaque(1000)] * 500) + b"]"
    before = await daemon.metrics()
    with capture_logs() as logs:
        status, answer, _ = await daemon.post_events(
            gzip.compress(body), {"Content-Encoding": "gzip"}
        )
    assert (status, answer) == (200, {"accepted": 500, "rejected": 0})
    assert not [entry for entry in logs if entry["log_level"] == "error"]
    assert daemon.runtime.state.servers[SERVER].handle((11, 22)).opaque_id is None  # type: ignore[union-attr]
    unknown = "janus_monitor_events_unknown_total"
    after = await daemon.metrics()
    assert (sample(after, unknown, what="field") or 0) - (
        sample(before, unknown, what="field") or 0
    ) == 500
    bomb = gzip.compress(b"[" + b",".join([nested_opaque(1000)] * 10_000) + b"]")
    status, answer, _ = await daemon.post_events(bomb, {"Content-Encoding": "gzip"})
    assert status == 413
    assert f"more than {MAX_VALUES} JSON values" in answer["error"]
    await healthy(daemon)


# --- 5. a memory bomb inside the byte limits -------------------------------------------------


def gzipped_empty_objects(inflated: int) -> bytes:
    """``[{},{},...]`` of ``inflated`` bytes, gzipped in steps so it never exists whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    step = b"{}," * (1 << 18)
    parts = [compressor.compress(b"[")]
    parts += [compressor.compress(step) for _ in range(inflated // len(step))]
    parts += [compressor.compress(b"{}]"), compressor.flush()]
    return b"".join(parts)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_many_tiny_items_are_refused_before_parsing(daemon: Daemon, encoding: str) -> None:
    """64 MiB of `{},` gzipped to 65 KB, or 8 MiB of it plain, is 413 too_large, and the
    process's peak RSS grows by less than 3x the plain bytes held (it was 2 GB / 320 MB)."""
    if encoding == "gzip":
        body, headers, held = gzipped_empty_objects(64 << 20), {"Content-Encoding": "gzip"}, 2 << 20
        assert len(body) < 100_000
    else:
        body, headers, held = b"[" + b"{}," * ((8 << 20) // 3 - 2) + b"{}]", {}, 8 << 20
    before = await daemon.metrics()
    field = "VmHWM" if reset_peak_rss() else "VmRSS"
    memory_before = vm_bytes(field)
    status, answer, _ = await daemon.post_events(body, headers)
    grown = vm_bytes(field) - memory_before
    assert status == 413
    assert f"more than {MAX_VALUES} JSON values" in answer["error"]
    assert grown < 3 * held + len(body), f"{field} grew by {grown} bytes"
    assert rejected_delta(before, await daemon.metrics()) == {"too_large": 1}
    await healthy(daemon)


async def test_a_body_at_the_value_bound_is_still_parsed(daemon: Daemon) -> None:
    """10 000 real-sized events (configured, about 15 values each) pass the value bound."""
    items = [configured(bitrate=i) for i in range(10_000)]
    status, answer, _ = await daemon.post_events(orjson.dumps(items))
    assert (status, answer) == (200, {"accepted": 10_000, "rejected": 0})


# --- 6. one long emitter ---------------------------------------------------------------------


async def test_emitter_of_one_mebibyte_is_rejected(daemon: Daemon) -> None:
    """An emitter of 1 MiB (or with a control character) is an invalid item; /metrics stays
    small and no server is tracked under it."""
    long_one = {**configured(bitrate=1), "emitter": "e" * (1 << 20)}
    control = {**configured(bitrate=1), "emitter": "bad\nname"}
    before = await daemon.metrics()
    status, answer, _ = await daemon.post_events(orjson.dumps([long_one, control]))
    assert status == 200
    assert answer["accepted"] == 0 and answer["rejected"] == 2
    assert {e["error"] for e in answer["errors"]} == {
        "event 'emitter' must be 1 to 128 printable characters"
    }
    assert rejected_delta(before, await daemon.metrics()) == {"invalid_event": 2}
    assert set(daemon.runtime.state.servers) == {SERVER}
    async with daemon.http.get(daemon.url("/metrics")) as response:
        assert len(await response.read()) < 20_000
    await healthy(daemon)


# --- 7. rooms and publishers created by events -----------------------------------------------


async def test_rooms_and_publishers_are_bounded_and_counted_once() -> None:
    """With max_tracked_rooms 5 and max_tracked_publishers 3, joins in 10 rooms track 5 rooms
    and 3 publishers; the refused are counted once each, however often they are named."""
    config = make_config(
        "limits: {max_tracked_rooms: 5, max_tracked_publishers: 3}\n"
        f"targets: [{{name: {SERVER}}}]"
    )
    async for daemon in run_daemon(config):
        for second in range(2):  # a new timestamp: the same bytes again would be a resend
            items = [joined(room, 1, session=room) | {"timestamp": second + 1}
                     for room in range(1, 11)]  # fmt: skip
            status, answer, _ = await daemon.post_events(orjson.dumps(items))
            assert (status, answer) == (200, {"accepted": 10, "rejected": 0})
        samples = await daemon.metrics()
        assert sample(samples, "janus_videoroom_rooms", server=SERVER) == 5
        assert len(series(samples, "janus_videoroom_publisher_info")) == 3
        dropped = "janus_monitor_state_dropped_total"
        assert sample(samples, dropped, kind="room", reason="limit") == 5
        assert sample(samples, dropped, kind="publisher", reason="limit") == 2
        assert sample(samples, "janus_monitor_tracked", kind="rooms") == 5
        await healthy(daemon)


def test_limits_keys_are_in_the_config() -> None:
    """limits.max_tracked_rooms and max_tracked_publishers default to SPEC's values."""
    limits = make_config("").limits
    assert (limits.max_tracked_rooms, limits.max_tracked_publishers) == (20000, 50000)


# --- 8. errors aiohttp answers itself; a text frame that is not UTF-8 ------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"PUT /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 405),
        (raw_post("/events", b"{}", b"Expect: bogus"), 417),
        (get("/no/such/page"), 404),
    ],
    ids=["malformed-header", "negative-length", "put-events", "bad-expect", "no-route"],
)
async def test_errors_aiohttp_answers_are_json(
    daemon: Daemon, request_bytes: bytes, status: int
) -> None:
    """Malformed HTTP, a wrong method, a bad Expect and no route all answer {"error": ...}."""
    answer = await raw_http(daemon.base, request_bytes)
    assert answer.status == status
    error = answer.json()["error"]
    assert isinstance(error, str) and error
    if status == 405:
        assert "POST" in answer.headers["allow"] and "POST" in error
    await healthy(daemon)


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    return (
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


async def test_websocket_text_frame_not_utf8_is_counted(daemon: Daemon) -> None:
    """A text frame 0xff 0xfe closes the socket with 1007 and counts a malformed_json
    rejection and a ws 400."""
    before = await daemon.metrics()
    host, _, port = daemon.base.removeprefix("http://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(ws_upgrade(base64.b64encode(os.urandom(16))))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.write(masked_text_frame(b"\xff\xfe"))
    frame = await asyncio.wait_for(reader.read(64), 5)
    writer.close()
    assert frame[0] & 0x0F == 0x8  # a close frame
    assert int.from_bytes(frame[2:4], "big") == 1007
    for _ in range(100):  # counted once the handler has seen the error
        after = await daemon.metrics()
        if rejected_delta(before, after):
            break
        await asyncio.sleep(0.01)
    assert rejected_delta(before, after) == {"malformed_json": 1}
    assert requests_delta(before, after, "ws", 400) == 1
    await healthy(daemon)


# --- what else events could grow without bound -----------------------------------------------


async def test_tombstones_media_and_plugin_labels_are_bounded() -> None:
    """Destroyed ids remembered are bounded by the limits, media stats per handle by 256 keys,
    and janus_handles{plugin} only shows plugin names Janus has (others are `other`)."""
    config = make_config(f"limits: {{max_tracked_handles: 10}}\ntargets: [{{name: {SERVER}}}]")
    async for daemon in run_daemon(config):
        detached = [
            {"emitter": SERVER, "type": 2, "session_id": 7, "handle_id": h,
             "event": {"name": "detached", "plugin": "janus.plugin.videoroom"}}
            for h in range(1, 101)
        ]  # fmt: skip
        gone = [
            {"emitter": SERVER, "type": 1, "session_id": s, "event": {"name": "destroyed"}}
            for s in range(1000, 1100)
        ]
        await daemon.post_events(orjson.dumps(detached + gone))
        server = daemon.runtime.state.servers[SERVER]
        assert len(server.gone_handles) == 10 and len(server.gone_sessions) == 10
        assert (7, 100) in server.gone_handles  # the newest are the ones kept

        attached = [
            {"emitter": SERVER, "type": 2, "session_id": 8, "handle_id": h,
             "event": {"name": "attached", "plugin": f"janus.plugin.evil{h}"}}
            for h in range(1, 4)
        ]  # fmt: skip
        stats = [
            {
                "emitter": SERVER,
                "type": 32,
                "subtype": 3,
                "session_id": 8,
                "handle_id": 1,
                "event": [{"mid": str(m), "media": "audio"} for m in range(first, first + 200)],
            }
            for first in (0, 200)
        ]  # fmt: skip; two reports of 200 mids each: 400 keys over time
        await daemon.post_events(orjson.dumps([*attached, *stats]))
        handle = server.handle((8, 1))
        assert handle is not None and len(handle.media) == MAX_STREAMS_PER_HANDLE
        samples = await daemon.metrics()
        assert {s["plugin"] for s in series(samples, "janus_handles")} == {"other"}
        assert sample(samples, "janus_handles", server=SERVER, plugin="other") == 3
