"""The client side of ``bench.admin_poll``: Janus API signalling latency, from its own process.

``python -m bench.signalling_client --url http://127.0.0.1:8088/janus --seconds 20``

Runs cycles of three Janus API requests over HTTP keep-alive connections:

    create (a new session) -> attach janus.plugin.videoroom -> destroy (the session)

and times each request from sending to the whole answer read. Cycles start on a fixed open-loop
schedule (``--rate`` per second), each in its own task, so a slow answer does not lower the
offered load or hide its own delay (no coordinated omission). Every one of these requests runs
on Janus's single request thread (janus-protocol.md §3.7), the thread the Admin API also uses.

After ``--warmup`` seconds that are not recorded, prints one JSON object on stdout: the
latencies in microseconds per request kind (``create``, ``attach``, ``destroy``), the cycles
started, the errors, and the wall time of the recorded window.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

VIDEOROOM = "janus.plugin.videoroom"
KINDS = ("create", "attach", "destroy")
CONNECTIONS = 8  # keep-alive connections; a cycle rarely overlaps the next at modest rates


class Failure(Exception):
    """A request failed or Janus answered something other than success."""


class Client:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONNECTIONS, force_close=False),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self.latencies: dict[str, list[int]] = {kind: [] for kind in KINDS}
        self.errors: dict[str, int] = {}
        self.recording = False
        self.in_flight = 0
        self.max_in_flight = 0

    async def close(self) -> None:
        await self.http.close()

    async def _request(self, kind: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body["transaction"] = secrets.token_hex(6)
        payload = orjson.dumps(body)
        started = time.perf_counter()
        async with self.http.post(
            self.url + path, data=payload, headers={"Content-Type": "application/json"}
        ) as response:
            raw = await response.read()
        elapsed = time.perf_counter() - started
        reply = orjson.loads(raw)
        if not isinstance(reply, dict) or reply.get("janus") != "success":
            raise Failure(f"{kind}: {raw[:200]!r}")
        if self.recording:
            self.latencies[kind].append(round(elapsed * 1e6))
        return reply

    async def cycle(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        kind = "create"
        try:
            created = await self._request(kind, "", {"janus": "create"})
            session_id = int(created["data"]["id"])
            kind = "attach"
            await self._request(kind, f"/{session_id}", {"janus": "attach", "plugin": VIDEOROOM})
            kind = "destroy"
            await self._request(kind, f"/{session_id}", {"janus": "destroy"})
        except (aiohttp.ClientError, TimeoutError, OSError, Failure, KeyError, ValueError) as exc:
            if self.recording:
                label = f"{kind}: {exc.__class__.__name__}"
                self.errors[label] = self.errors.get(label, 0) + 1
        finally:
            self.in_flight -= 1


async def run(
    url: str, seconds: float, warmup: float, rate: float, request_timeout: float
) -> dict[str, Any]:
    client = Client(url, request_timeout)
    tasks: set[asyncio.Task[None]] = set()
    clock = time.perf_counter
    period = 1.0 / rate
    try:
        started = clock()
        record_from = started + warmup
        stop_at = record_from + seconds
        cycles = 0
        recorded_cycles = 0
        late = 0.0  # how far behind schedule the loop started cycles, at worst
        window_start = window_end = 0.0
        index = 0
        while True:
            due = started + index * period
            if due >= stop_at:
                break
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
            now = clock()
            if not client.recording and now >= record_from:
                client.recording = True
                window_start = now
            if client.recording:
                recorded_cycles += 1
                late = max(late, now - due)
            task = asyncio.create_task(client.cycle())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            cycles += 1
            index += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=request_timeout + 1)
        window_end = clock()
        client.recording = False
    finally:
        for task in tasks:
            task.cancel()
        await client.close()
    return {
        "latencies_us": client.latencies,
        "errors": client.errors,
        "cycles": recorded_cycles,
        "window_seconds": window_end - window_start,
        "rate": rate,
        "max_in_flight": client.max_in_flight,
        "max_late_ms": late * 1000,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.signalling_client",
        description="Janus API create/attach/destroy latency at a steady rate; JSON on stdout.",
    )
    parser.add_argument("--url", required=True, help="the Janus API base URL (.../janus)")
    parser.add_argument("--seconds", type=float, default=20.0, help="recorded window")
    parser.add_argument("--warmup", type=float, default=1.0, help="unrecorded lead-in")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="cycles (create+attach+destroy) per second"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.warmup < 0:
        print("--seconds and --rate must be > 0, --warmup >= 0", file=sys.stderr)
        return 2
    result = asyncio.run(run(args.url, args.seconds, args.warmup, args.rate, args.timeout))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
