"""``python -m bench.hostile``: issue 12's hostile requests against a fresh daemon each.

Every probe starts ``python -m monitor run`` with the README's minimal config (one target,
``janus-1``), sends its exact request(s) over raw sockets, then reads the answer, the time it
took, the daemon's peak RSS (VmHWM), whether it still answers ``/-/healthy`` and
``/api/v1/publishers``, and the size of ``/metrics``. Figures, not asserts: the regression
tests in ``tests/test_hostile.py`` assert the answers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from lab.janus import free_port, stop_process
from lab.rawhttp import raw_http, raw_post

REPO_ROOT = Path(__file__).resolve().parent.parent
# 64 MiB of `{},` gzipped: built once, streamed so the plain text never exists at once.
_compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
BOMB = (
    _compressor.compress(b"[")
    + b"".join(_compressor.compress(b"{}," * (1 << 18)) for _ in range(85))
    + _compressor.compress(b"{}]")
    + _compressor.flush()
)
CONFIG = (
    "listen: 127.0.0.1:{port}\nlog: {{level: warning, format: json}}\n"
    "targets: [{{name: janus-1}}]\n"
)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def configured(bitrate: object) -> bytes:
    return orjson.dumps(
        {
            "emitter": "janus-1", "type": 64, "timestamp": 1, "session_id": 11, "handle_id": 22,
            "event": {"plugin": "janus.plugin.videoroom",
                      "data": {"event": "configured", "room": 1234, "id": 42, "bitrate": bitrate}},
        }
    )  # fmt: skip


def joined(room: int, publisher: int) -> dict[str, object]:
    return {
        "emitter": "janus-1", "type": 64, "timestamp": 1, "session_id": room, "handle_id": 1,
        "event": {"plugin": "janus.plugin.videoroom",
                  "data": {"event": "joined", "room": room, "id": publisher, "display": "x"}},
    }  # fmt: skip


def nested(depth: int) -> bytes:
    return b"[" * depth + b'"x"' + b"]" * depth


def ws_handshake(key: bytes) -> bytes:
    return (
        b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: janus-event-handlers\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    )


def masked_text_frame(payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


@dataclass
class Probe:
    item: str
    run: Callable[[int], Awaitable[str]]


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def p1(port: int) -> str:
    a = await raw_http(url(port), raw_post("/events", b"{}", b"Content-Encoding: \xff"))
    return f"{a.status} {a.headers.get('content-type')} {a.body[:80]!r}"


async def p2(port: int) -> str:
    a = await raw_http(url(port), ws_handshake(b"\xff\xff"))
    return f"{a.status} {a.headers.get('content-type')} {a.body[:80]!r}"


async def p3(port: int) -> str:
    a = await raw_http(url(port), raw_post("/events", configured(1e308)))
    pubs = await raw_http(url(port), get("/api/v1/publishers"))
    rooms = await raw_http(url(port), get("/api/v1/rooms"))
    return f"POST {a.status} {a.body[:60]!r}; publishers {pubs.status}; rooms {rooms.status}"


async def p4(port: int) -> str:
    # orjson writes at most 255 levels; the nesting is spliced in as text.
    item = configured(1).replace(b'"emitter"', b'"opaque_id":' + nested(1000) + b',"emitter"')
    body = gzip.compress(b"[" + b",".join([item] * 10_000) + b"]")
    a = await raw_http(url(port), raw_post("/events", body, b"Content-Encoding: gzip"), 120)
    return f"{a.status} {a.body[:80]!r} (gzip body {len(body)} bytes)"


async def p5(port: int) -> str:
    a = await raw_http(url(port), raw_post("/events", BOMB, b"Content-Encoding: gzip"), 120)
    return f"{a.status} {a.body[:70]!r} (gzip {len(BOMB)} bytes -> 64 MiB)"


async def p5b(port: int) -> str:
    plain = b"[" + b"{}," * ((8 << 20) // 3 - 2) + b"{}]"
    a = await raw_http(url(port), raw_post("/events", plain), 120)
    return f"{a.status} {a.body[:70]!r} (plain {len(plain)} bytes)"


async def p6(port: int) -> str:
    item = orjson.loads(configured(1))
    item["emitter"] = "e" * (1 << 20)
    a = await raw_http(url(port), raw_post("/events", orjson.dumps(item)))
    return f"{a.status} {a.body[:80]!r}"


async def p7(port: int) -> str:
    statuses = []
    for batch in range(10):
        items = [joined(batch * 10_000 + i + 1, 1) for i in range(10_000)]
        a = await raw_http(url(port), raw_post("/events", orjson.dumps(items)))
        statuses.append(a.status)
    started = time.perf_counter()
    m = await raw_http(url(port), get("/metrics"))
    took = time.perf_counter() - started
    return f"POSTs {set(statuses)}; /metrics {len(m.body)} bytes in {took:.2f} s"


async def p8(port: int) -> str:
    bad = await raw_http(url(port), b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    put = await raw_http(
        url(port), b"PUT /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    )
    expect = await raw_http(url(port), raw_post("/events", b"{}", b"Expect: bogus"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(ws_handshake(key))
    await reader.readuntil(b"\r\n\r\n")
    writer.write(masked_text_frame(b"\xff\xfe"))
    frame = await asyncio.wait_for(reader.read(64), 10)
    writer.close()
    close_code = int.from_bytes(frame[2:4], "big") if len(frame) >= 4 else None
    rejected = await raw_http(url(port), get("/metrics"))
    line = next(
        (
            ln
            for ln in rejected.body.decode().splitlines()
            if ln.startswith('janus_monitor_events_rejected_total{reason="malformed_json"}')
        ),
        "",
    )
    kinds = [a.headers.get("content-type") for a in (bad, put, expect)]
    return (
        f"malformed {bad.status} {kinds[0]}; PUT {put.status} {kinds[1]}; "
        f"Expect {expect.status} {kinds[2]}; ws close {close_code}, {line or '-'}"
    )


PROBES = [
    Probe("1 non-UTF-8 Content-Encoding", p1),
    Probe("2 WebSocket key not ASCII", p2),
    Probe("3 bitrate 1e308", p3),
    Probe("4 nested opaque_id x 10000", p4),
    Probe("5 gzip 64 MiB of {}", p5),
    Probe("5 plain 8 MiB of {}", p5b),
    Probe("6 emitter of 1 MiB", p6),
    Probe("7 100k rooms by events", p7),
    Probe("8 aiohttp errors, bad UTF-8 frame", p8),
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_healthy(port: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            a = await raw_http(url(port), get("/-/healthy"), within=1)
            if a.status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("daemon did not start")


async def run_probe(probe: Probe, workdir: Path) -> None:
    port = free_port()
    config = workdir / "janus-monitor.yml"
    config.write_text(CONFIG.format(port=port))
    log = (workdir / "daemon.log").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 (a bench: started once per probe)
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        await wait_healthy(port)
        before = peak_rss_mb(proc.pid)
        started = time.perf_counter()
        try:
            outcome = await probe.run(port)
        except Exception as exc:  # the probe's own failure is a finding too
            outcome = f"probe failed: {exc.__class__.__name__}: {exc}"
        took = time.perf_counter() - started
        peak = peak_rss_mb(proc.pid)
        healthy = (await raw_http(url(port), get("/-/healthy"))).status
        api = (await raw_http(url(port), get("/api/v1/publishers"))).status
        metrics = await raw_http(url(port), get("/metrics"))
        tracebacks = (workdir / "daemon.log").read_bytes().count(b"Traceback")
        print(
            f"{probe.item:36} | {outcome}\n{'':36} | {took:.2f} s, peak RSS {before:.0f} -> "
            f"{peak:.0f} MB, healthy {healthy}, api {api}, /metrics {len(metrics.body)} bytes, "
            f"{tracebacks} tracebacks logged",
            flush=True,
        )
    finally:
        stop_process(proc)
        log.close()


async def main(selected: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="janus-monitor-hostile-") as tmp:
        for probe in PROBES:
            if selected and not any(probe.item.startswith(s) for s in selected):
                continue
            await run_probe(probe, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", help="item numbers to run (default: all)")
    asyncio.run(main(parser.parse_args().items))
