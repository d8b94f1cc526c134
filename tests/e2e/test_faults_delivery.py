"""sampleevh retransmits a batch after a transport error: a real Janus 1.1.2 resends it, and
the daemon counts it once.

Between Janus and the daemon a relay passes bytes both ways; armed, it lets one request
reach the daemon and then closes Janus's connection instead of relaying the answer. libcurl
reports "empty reply from server", and sampleevh resends the same serialized batch after its
100 ms backoff (janus-protocol.md §1.5).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import lab.janus
from lab.janus import JanusLabConfig, JanusProcess, free_ports
from monitor.decode.records import TYPE_LABELS
from tests.conftest import Daemon, make_config, run_daemon, sample
from tests.e2e.conftest import WEBHOOK_PATH

pytestmark = pytest.mark.e2e


class DroppingRelay:
    """TCP relay to the daemon that, when armed, swallows the answer to one request and
    closes the sender's connection."""

    def __init__(self) -> None:
        self.upstream_port = 0  # the daemon's, once it listens
        self.armed = False
        self.dropped: list[bytes] = []  # the requests whose answers were swallowed
        self.requests: list[bytes] = []  # every request, as relayed
        self.server: asyncio.Server | None = None

    async def start(self, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pending = bytearray()  # the request being relayed, up to its answer

        async def forward() -> None:
            while data := await client_r.read(65536):
                pending.extend(data)
                up_w.write(data)
                await up_w.drain()
            up_w.close()

        to_daemon = asyncio.create_task(forward())
        try:
            while data := await up_r.read(65536):
                if data.startswith(b"HTTP/1.1 100"):
                    client_w.write(data)
                    continue
                self.requests.append(bytes(pending))
                if self.armed:
                    self.armed = False
                    self.dropped.append(bytes(pending))
                    client_w.transport.abort()  # no answer at all: a transport error for curl
                    return
                pending.clear()
                client_w.write(data)
                await client_w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            to_daemon.cancel()
            up_w.close()
            client_w.close()


def items_of_body(body: bytes) -> list[dict[str, Any]]:
    parsed = orjson.loads(body)
    return parsed if isinstance(parsed, list) else [parsed]


def received(samples: dict[Any, float], name: str, kind: str) -> float:
    return sample(samples, "janus_monitor_events_received_total", server=name, type=kind) or 0.0


@pytest.mark.parametrize("window", ["60s", "0s"])
async def test_a_retransmitted_batch_is_counted_once(
    tmp_path: Path, janus_binary: str, janus_config: JanusLabConfig, window: str
) -> None:
    """A batch Janus resends after a swallowed answer is counted once (and twice with the
    guard off, which shows the relay really made Janus resend)."""
    (relay_port,) = free_ports(1)
    name = janus_config.server_name
    config = make_config(yaml.safe_dump({
        "webhook": {"path": WEBHOOK_PATH, "duplicate_window": window},
        "targets": [{"name": name}],
    }))  # fmt: skip
    relay = DroppingRelay()
    await relay.start(relay_port)
    cfg = dataclasses.replace(
        janus_config, evh_backend=f"http://127.0.0.1:{relay_port}{WEBHOOK_PATH}"
    )
    lab.janus.write_janus_config(tmp_path / "conf", cfg)
    janus = JanusProcess(cfg, binary=janus_binary)
    async for daemon in run_daemon(config):
        relay.upstream_port = int(daemon.base.rpartition(":")[2])
        try:
            await asyncio.to_thread(janus.start, tmp_path / "conf", tmp_path / "janus.log")
            await until(partial(received_now, daemon, name, "core"), "Janus's started event")
            # Settled first: Janus's own startup probes (transport events) may still arrive.
            before, mark = await settled(daemon, relay)
            relay.armed = True
            await asyncio.to_thread(
                lab.janus.post_json, cfg.janus_url, {"janus": "create", "transaction": "dup"}
            )
            await until(lambda: resent(relay), "Janus resending the swallowed batch")
            after, seen = await settled(daemon, relay)
            relayed = relay.requests[mark:seen]  # not what Janus sends as it stops
        finally:
            await asyncio.to_thread(janus.stop)
            await relay.stop()
    # Every body relayed since arming, the swallowed one and its resend included: with the
    # guard each distinct body counts once, without it every copy does.
    bodies = [r.partition(b"\r\n\r\n")[2] for r in relayed]
    counted_bodies = list(dict.fromkeys(bodies)) if window == "60s" else bodies
    expected = Counter(
        TYPE_LABELS[item["type"]] for body in counted_bodies for item in items_of_body(body)
    )
    counted = {
        kind: received(after, name, kind) - received(before, name, kind) for kind in expected
    }
    assert counted == dict(expected)
    assert len(bodies) > len(set(bodies)), "Janus did not resend the swallowed batch"
    duplicates = sample(after, "janus_monitor_events_rejected_total", reason="duplicate_batch")
    assert duplicates == (1.0 if window == "60s" else 0.0)


async def settled(daemon: Daemon, relay: DroppingRelay) -> tuple[dict[Any, float], int]:
    """The daemon's metrics and the relay's request count once neither moves for 0.3 s:
    an answer in flight would otherwise be counted by one and not yet seen by the other."""
    previous = (await daemon.metrics(), len(relay.requests))
    while True:
        await asyncio.sleep(0.3)
        now = (await daemon.metrics(), len(relay.requests))
        moved = {k: v for k, v in now[0].items() if k[0].endswith("_received_total")} != {
            k: v for k, v in previous[0].items() if k[0].endswith("_received_total")
        }
        if not moved and now[1] == previous[1]:
            return now
        previous = now


async def received_now(daemon: Daemon, name: str, kind: str) -> bool:
    return received(await daemon.metrics(), name, kind) > 0


async def resent(relay: DroppingRelay) -> bool:
    if not relay.dropped:
        return False
    body = relay.dropped[0].partition(b"\r\n\r\n")[2]
    return sum(r.partition(b"\r\n\r\n")[2] == body for r in relay.requests) >= 2


async def until(check: Any, what: str, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)
