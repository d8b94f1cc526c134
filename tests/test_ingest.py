"""The webhook receiver over real HTTP and WebSocket: bodies, encodings, auth, limits, errors."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from monitor.decode.records import TYPE_LABELS
from tests.conftest import (
    EVENTS,
    Daemon,
    bodies,
    body_paths,
    items_of,
    make_config,
    rejected_delta,
    reset_peak_rss,
    run_daemon,
    sample,
    scenarios,
    series,
    vm_bytes,
)

# --- helpers (candidates for tests/conftest.py) ----------------------------------------------

RECEIVED = "janus_monitor_events_received_total"
SERVER = "janus-lab-1"
SUBPROTOCOL = "janus-event-handlers"


def index_of(scenario: str) -> list[dict[str, Any]]:
    """One entry per recorded POST of a scenario: headers, count and types (index.jsonl)."""
    lines = (EVENTS / scenario / "index.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@asynccontextmanager
async def counting_client() -> AsyncIterator[tuple[aiohttp.ClientSession, list[object]]]:
    """A client with one pooled connection that records every new TCP connection it opens."""
    opened: list[object] = []

    async def on_create(session: object, context: object, params: object) -> None:
        opened.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(
        connector=connector, trace_configs=[trace], auto_decompress=False
    ) as http:
        yield http, opened


def gzip_bomb(inflated: int, step: int = 1 << 20) -> bytes:
    """``inflated`` zero bytes gzip-compressed, streamed so the zeros never exist at once."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9, zlib.Z_RLE)
    zeros = bytes(step)
    parts = [compressor.compress(zeros) for _ in range(inflated // step)]
    parts.append(compressor.flush())
    return b"".join(parts)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def upto(scenario: str, last: str) -> list[bytes]:
    """A scenario's bodies up to and including file ``last`` (a stem such as 00033)."""
    return [p.read_bytes() for p in body_paths(scenario) if p.stem <= last]


# --- every recorded body -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", scenarios())
async def test_every_fixture_body_is_accepted(daemon: Daemon, scenario: str) -> None:
    """Every body Janus 1.1.2 sent in a scenario, POSTed in order, is fully accepted."""
    paths = body_paths(scenario)
    recorded = index_of(scenario)
    assert paths
    assert len(paths) == len(recorded)
    for path, entry in zip(paths, recorded, strict=True):
        status, answer, _ = await daemon.post_events(
            path.read_bytes(), {"Content-Type": "application/json"}
        )
        count = len(items_of(path))
        assert count == entry["count"], path
        assert (status, answer) == (200, {"accepted": count, "rejected": 0}), path


@pytest.mark.parametrize("scenario", ["50-evh-compress", "56-evh-compress-burst"])
async def test_real_gzip_bodies_match_their_decoded_twins(daemon: Daemon, scenario: str) -> None:
    """The exact gzip bodies of compress=true are accepted with their decoded twins' counts."""
    compressed = sorted((EVENTS / scenario).glob("[0-9]*.json.gz"))
    assert len(compressed) == len(body_paths(scenario))
    total = 0
    for path in compressed:
        twin = path.with_suffix("")  # 00001.json.gz -> 00001.json
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        status, answer, _ = await daemon.post_events(
            path.read_bytes(), {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )
        count = len(items_of(twin))
        assert (status, answer) == (200, {"accepted": count, "rejected": 0}), path
        total += count
    samples = await daemon.metrics()
    received = sum(
        sample(samples, RECEIVED, server=SERVER, type=label) or 0 for label in TYPE_LABELS.values()
    )
    assert received == total


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("identity", lambda data: data),
        ("GZIP", gzip.compress),
    ],
    ids=["deflate-zlib", "deflate-raw", "identity", "gzip-uppercase"],
)
async def test_other_encodings_are_accepted(
    daemon: Daemon, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    """deflate (zlib-wrapped and raw), identity and a differently cased gzip all decode."""
    path = body_paths("10-media")[24]  # 00025: a 6-event batch
    count = len(items_of(path))
    assert count > 1
    status, answer, _ = await daemon.post_events(
        encode(path.read_bytes()), {"Content-Encoding": encoding}
    )
    assert (status, answer) == (200, {"accepted": count, "rejected": 0})


async def test_object_body_without_grouping_is_accepted(daemon: Daemon) -> None:
    """A grouping=false body is a single JSON object and counts as one accepted event."""
    path = body_paths("51-evh-nogroup-auth")[1]
    body = path.read_bytes()
    assert body.lstrip().startswith(b"{")
    status, answer, _ = await daemon.post_events(body)
    assert (status, answer) == (200, {"accepted": 1, "rejected": 0})


async def test_recorded_basic_auth_header_is_accepted() -> None:
    """With basic_auth evhuser/evhpass, the Authorization header curl really sent is accepted."""
    config = make_config(
        "webhook: {basic_auth: {username: evhuser, password: evhpass}}\n"
        f"targets: [{{name: {SERVER}}}]"
    )
    scenario = "51-evh-nogroup-auth"
    recorded = index_of(scenario)
    async for daemon in run_daemon(config):
        for path, entry in zip(body_paths(scenario), recorded, strict=True):
            headers = {"Authorization": entry["headers"]["Authorization"]}
            status, answer, _ = await daemon.post_events(path.read_bytes(), headers)
            assert (status, answer) == (200, {"accepted": 1, "rejected": 0}), path
        status, _, _ = await daemon.post_events(body_paths(scenario)[0].read_bytes())
        assert status == 401


# --- refused bodies ------------------------------------------------------------------------

LIMITED = f"""
webhook: {{basic_auth: {{username: evhuser, password: evhpass}}, max_body_bytes: 4096}}
targets: [{{name: {SERVER}}}]
"""
GOOD_AUTH = {"Authorization": basic("evhuser", "evhpass")}
BODY = body_paths("10-media")[0].read_bytes()  # one transport event


async def _chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b" " * min(size, total - start)


def _corrupt_gzip() -> bytes:
    body = bytearray(gzip.compress(BODY))
    body[12:20] = b"\xff" * 8  # garbage in the deflate stream
    return bytes(body)


GZIP = {**GOOD_AUTH, "Content-Encoding": "gzip"}
WRONG_PASSWORD = {"Authorization": basic("evhuser", "evhpas")}
NOT_BASIC = {"Authorization": "Bearer evhpass"}
BROTLI = {**GOOD_AUTH, "Content-Encoding": "br"}

# request body (or a factory of a chunked one), headers, status, reason, connection kept
ERROR_CASES = [
    pytest.param(b'[{"emitter": "janus-lab-1", ', GOOD_AUTH, 400, "malformed_json", True,
                 id="malformed-json"),
    pytest.param(b"42", GOOD_AUTH, 400, "bad_body", True, id="json-number"),
    pytest.param(b'"janus"', GOOD_AUTH, 400, "bad_body", True, id="json-string"),
    pytest.param(b"null", GOOD_AUTH, 400, "bad_body", True, id="json-null"),
    pytest.param(b"", GOOD_AUTH, 400, "malformed_json", True, id="empty"),
    pytest.param(BODY, {}, 401, "unauthorized", True, id="missing-auth"),
    pytest.param(BODY, WRONG_PASSWORD, 401, "unauthorized", True, id="wrong-password"),
    pytest.param(BODY, NOT_BASIC, 401, "unauthorized", True, id="not-basic"),
    pytest.param(b" " * 4097, GOOD_AUTH, 413, "too_large", False, id="too-large"),
    pytest.param(lambda: _chunks(10_000), GOOD_AUTH, 413, "too_large", False,
                 id="too-large-chunked"),
    pytest.param(BODY, BROTLI, 415, "unsupported_encoding", True, id="brotli"),
    pytest.param(gzip.compress(BODY)[:-12], GZIP, 400, "bad_compression", True,
                 id="gzip-truncated"),
    pytest.param(_corrupt_gzip(), GZIP, 400, "bad_compression", True, id="gzip-corrupt"),
    pytest.param(b"", GZIP, 400, "bad_compression", True, id="gzip-empty"),
    pytest.param(BODY, GZIP, 400, "bad_compression", True, id="gzip-on-plain-json"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "headers", "status", "reason", "kept"), ERROR_CASES)
async def test_refused_body(
    body: Any, headers: dict[str, str], status: int, reason: str, kept: bool
) -> None:
    """A bad body gets its SPEC status, a JSON error, one rejection under its reason, and
    the connection stays usable for the next POST unless the server closed it on purpose."""
    async for daemon in run_daemon(make_config(LIMITED)):
        url = daemon.url("/events")
        before = await daemon.metrics()
        async with counting_client() as (http, opened):
            data = body() if callable(body) else body
            async with http.post(url, data=data, headers=headers) as response:
                assert response.status == status
                assert response.content_type == "application/json"
                answer = await response.json()
                assert set(answer) == {"error"}
                assert isinstance(answer["error"], str)
                assert answer["error"]
                if status == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Basic ")
                else:
                    assert "WWW-Authenticate" not in response.headers
            after = await daemon.metrics()
            assert rejected_delta(before, after) == {reason: 1}
            async with http.post(url, data=BODY, headers=GOOD_AUTH) as response:
                assert response.status == 200
                assert await response.json() == {"accepted": 1, "rejected": 0}
            assert len(opened) == (1 if kept else 2)


async def test_unauthorized_large_body_gets_401_and_keeps_the_connection() -> None:
    """A 2 MB POST without credentials (under max_body_bytes, over aiohttp's 1 MiB
    client_max_size) still gets the 401 JSON answer, and the connection is reused."""
    config = make_config(
        "webhook: {basic_auth: {username: evhuser, password: evhpass}}\n"
        f"targets: [{{name: {SERVER}}}]"
    )
    async for daemon in run_daemon(config):
        url = daemon.url("/events")
        before = await daemon.metrics()
        async with counting_client() as (http, opened):
            big = b"[" + b" " * (2 * 1024 * 1024) + b"]"
            async with http.post(url, data=big) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Basic ")
                assert set(await response.json()) == {"error"}
            headers = {"Authorization": basic("evhuser", "evhpass")}
            async with http.post(url, data=BODY, headers=headers) as response:
                assert response.status == 200
                assert await response.json() == {"accepted": 1, "rejected": 0}
            assert len(opened) == 1
        assert rejected_delta(before, await daemon.metrics()) == {"unauthorized": 1}


async def test_gzip_bomb_is_refused_within_bounded_memory() -> None:
    """200 MB of zeros gzipped to a few hundred KB is refused with 413 once the inflated
    size passes max_decompressed_bytes, and the process peak RSS grows by less than 2x it."""
    limit = 8 * 1024 * 1024
    config = make_config(
        f"webhook: {{max_body_bytes: 1048576, max_decompressed_bytes: {limit}}}\n"
        f"targets: [{{name: {SERVER}}}]"
    )
    bomb = gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    async for daemon in run_daemon(config):
        before = await daemon.metrics()
        field = "VmHWM" if reset_peak_rss() else "VmRSS"
        memory_before = vm_bytes(field)
        status, answer, headers = await daemon.post_events(bomb, {"Content-Encoding": "gzip"})
        grown = vm_bytes(field) - memory_before
        assert status == 413
        assert "max_decompressed_bytes" in answer["error"]
        assert headers.get("Connection") != "close"  # the body was read whole: no need to close
        assert grown < 2 * limit, f"{field} grew by {grown} bytes"
        assert rejected_delta(before, await daemon.metrics()) == {"decompressed_too_large": 1}
        # Just under the limit still inflates and parses (here: a JSON array padded with spaces).
        padded = b"[" + b" " * (limit - 2) + b"]"
        status, answer, _ = await daemon.post_events(
            gzip.compress(padded), {"Content-Encoding": "gzip"}
        )
        assert (status, answer) == (200, {"accepted": 0, "rejected": 0})


# --- batches with bad items ----------------------------------------------------------------


async def test_mixed_batch_keeps_the_good_items(daemon: Daemon) -> None:
    """Bad items of a batch are refused one by one with their indexes; the good ones land."""
    good = [item for path in body_paths("10-media")[:33] for item in items_of(path)]
    joined = next(i for i in good if i.get("event", {}).get("data", {}).get("event") == "joined")
    no_emitter = copy.deepcopy(good[0])
    del no_emitter["emitter"]
    no_room = copy.deepcopy(joined)
    del no_room["event"]["data"]["room"]
    string_session = copy.deepcopy(joined)
    string_session["session_id"] = str(joined["session_id"])
    batch: list[Any] = list(good)
    bad_at = [0, 7, 20, len(good) + 3]
    for index, item in zip(bad_at, [42, no_emitter, no_room, string_session], strict=True):
        batch.insert(index, item)
    assert [batch[i] for i in bad_at] == [42, no_emitter, no_room, string_session]

    before = await daemon.metrics()
    status, answer, _ = await daemon.post_events(json.dumps(batch).encode())
    assert status == 200
    assert answer["accepted"] == len(good)
    assert answer["rejected"] == len(bad_at)
    assert [error["index"] for error in answer["errors"]] == bad_at
    assert all(isinstance(e["error"], str) and e["error"] for e in answer["errors"])
    after = await daemon.metrics()
    assert rejected_delta(before, after) == {"invalid_event": len(bad_at)}
    publishers = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert [(p["room"], p["publisher"], p["display"]) for p in publishers] == [
        ("4321", "2244074596607377", "alice")
    ]


def _with_emitter(item: dict[str, Any], emitter: str) -> dict[str, Any]:
    return {**item, "emitter": emitter}


async def test_unknown_emitters_are_bounded() -> None:
    """Unknown emitters are tracked under their own names up to max_unknown_emitters; items
    from more are refused one by one while configured targets keep being accepted."""
    config = make_config(f"limits: {{max_unknown_emitters: 2}}\ntargets: [{{name: {SERVER}}}]")
    event = items_of(body_paths("10-media")[0])[0]  # a transport event: no session needed
    emitters = ["stranger-1", "stranger-2", "stranger-3", SERVER, "stranger-1", "stranger-3"]
    async for daemon in run_daemon(config):
        before = await daemon.metrics()
        batch = [_with_emitter(event, name) for name in emitters]
        status, answer, _ = await daemon.post_events(json.dumps(batch).encode())
        assert status == 200
        assert (answer["accepted"], answer["rejected"]) == (4, 2)
        assert [error["index"] for error in answer["errors"]] == [2, 5]
        after = await daemon.metrics()
        assert rejected_delta(before, after) == {"unknown_emitter_limit": 2}
        assert sample(after, RECEIVED, server="stranger-1", type="transport") == 2
        assert sample(after, RECEIVED, server="stranger-3", type="transport") is None
        servers = (await daemon.get_json("/api/v1/servers"))["servers"]
        assert {s["name"]: s["configured"] for s in servers} == {
            SERVER: True,
            "stranger-1": False,
            "stranger-2": False,
        }
        # A whole batch from one refused emitter: each item refused once.
        before = await daemon.metrics()
        lone = [_with_emitter(event, "stranger-4")] * 3
        status, answer, _ = await daemon.post_events(json.dumps(lone).encode())
        assert (status, answer["accepted"], answer["rejected"]) == (200, 0, 3)
        assert [error["index"] for error in answer["errors"]] == [0, 1, 2]
        assert rejected_delta(before, await daemon.metrics()) == {"unknown_emitter_limit": 3}
        # The configured target still gets a whole scenario through.
        for body in bodies("00-startup"):
            status, answer, _ = await daemon.post_events(body)
            assert status == 200
            assert answer["rejected"] == 0


async def test_received_counter_by_type(daemon: Daemon) -> None:
    """events_received_total{server,type} counts every event of a scenario under its type."""
    scenario = "10-media"
    expected: Counter[str] = Counter()
    for path in body_paths(scenario):
        expected.update(TYPE_LABELS[item["type"]] for item in items_of(path))
        status, _, _ = await daemon.post_events(path.read_bytes())
        assert status == 200
    assert {"plugin", "webrtc", "media", "jsep"} <= set(expected)
    samples = await daemon.metrics()
    counted = {
        labels["type"]: samples[(RECEIVED, frozenset(labels.items()))]
        for labels in series(samples, RECEIVED)
        if labels["server"] == SERVER
    }
    assert counted == dict(expected)
