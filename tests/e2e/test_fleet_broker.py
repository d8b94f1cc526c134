"""A broker restart under a real Janus (rabbitmqevh, heartbeat 4) and a daemon process: the
gap shows in the metrics, both sides reconnect, ingest resumes, nothing crashes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

import lab.janus
from lab.janus import JanusProcess, free_ports
from lab.netns import LabNetns
from lab.rabbitmq import RabbitBroker, require_rabbitmq
from tests.conftest import Samples, sample, unavailable
from tests.e2e.fleet import DaemonProcess, poll_until
from tests.e2e.test_fleet import ROOM, daemon_config, janus_config

pytestmark = pytest.mark.e2e

EXCHANGE = "jm-restart"


def events_from(samples: Samples, server: str) -> float:
    received = "janus_monitor_events_received_total"
    return sum(
        v for (n, labels), v in samples.items() if n == received and ("server", server) in labels
    )


def owned(samples: Samples) -> float | None:
    return sample(samples, "janus_monitor_emitter_owned", server="janus-a")


def flowing(samples: Samples) -> bool:
    publishers = sample(
        samples, "janus_videoroom_room_publishers", server="janus-a", room=str(ROOM)
    )
    return owned(samples) == 1.0 and publishers == 1.0


def cut_off(samples: Samples) -> bool:
    return sample(samples, "janus_monitor_amqp_connected") == 0.0 and owned(samples) == 0.0


async def until(
    daemon: DaemonProcess, http: aiohttp.ClientSession, check: Callable[[Samples], bool],
    within: float, what: str,
) -> tuple[float, Samples]:  # fmt: skip
    """Seconds until ``check`` holds on the daemon's /metrics, and those metrics."""
    return await poll_until(lambda: daemon.metrics(http), check, within, what, every=0.2)


async def test_a_broker_restart_is_a_counted_gap_and_ingest_resumes(
    lab_netns: LabNetns, janus_binary: str, tmp_path: Path
) -> None:
    """Stop the broker for a few seconds under live media: the daemon shows the gap
    (amqp_connected 0, owns nothing), then reconnects, owns the Janus again and counts its
    events again once Janus has reconnected too."""
    try:
        require_rabbitmq()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    from lab.webrtc import Publisher

    broker = RabbitBroker(tmp_path / "broker")
    await asyncio.to_thread(broker.start)
    ports = free_ports(4)  # in one go: the daemon listens before the Janus starts
    cfg = janus_config("janus-a", broker, EXCHANGE, ports[:3])
    config = daemon_config(broker, EXCHANGE, [cfg], tmp_path / "actions.jsonl")
    daemon = DaemonProcess("daemon", config, tmp_path, port=ports[3])
    janus = JanusProcess(cfg, binary=janus_binary)
    publisher = Publisher(cfg.janus_url, ROOM, "p", opaque_id="restart-p")
    try:
        await asyncio.to_thread(daemon.start)
        lab.janus.write_janus_config(tmp_path / "janus-conf", cfg)
        await asyncio.to_thread(janus.start, tmp_path / "janus-conf", tmp_path / "janus.log")
        await publisher.start()
        async with aiohttp.ClientSession() as http:
            _, before = await until(daemon, http, flowing, 20.0, "events flow before")
            stopped = time.monotonic()
            await asyncio.to_thread(broker.stop)
            await until(daemon, http, cut_off, 10.0, "the daemon shows it lost the broker")
            await asyncio.sleep(2.0)
            down = time.monotonic() - stopped
            await asyncio.to_thread(broker.start)

            def connected(samples: Samples) -> bool:
                return sample(samples, "janus_monitor_amqp_connected") == 1.0

            reconnected, _ = await until(daemon, http, connected, 30.0, "the daemon reconnects")
            mark = events_from(await daemon.metrics(http), "janus-a")

            def resumed(samples: Samples) -> bool:
                return flowing(samples) and events_from(samples, "janus-a") > mark

            waited, after = await until(daemon, http, resumed, 40.0, "Janus's events again")
            print(
                f"broker down {down:.1f}s; the daemon reconnected {reconnected:.1f}s and "
                f"events resumed {reconnected + waited:.1f}s after the broker was back"
            )
            assert daemon.alive, "the daemon crashed"
            assert events_from(before, "janus-a") > 0
            assert sample(after, "janus_monitor_amqp_connection_losses_total") == 1.0
            gap = sample(after, "janus_monitor_amqp_disconnected_seconds_total") or 0.0
            assert 2.0 <= gap <= time.monotonic() - stopped  # it was down 2 s after the cut
        log = daemon.log.read_text()
        assert "amqp_reconnected" in log
        assert broker.users[0].password not in log  # reconnect logs name the URL, censored
    finally:
        await publisher.close()
        await asyncio.to_thread(janus.stop)
        daemon.stop()
        await asyncio.to_thread(broker.close)
