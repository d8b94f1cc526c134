"""Per-publisher bitrate on a real Janus 1.1.2 with real aiortc publishers.

Three rooms: capped at 128 kbps (aiortc never encodes VP8 below about 250 kbps, so its
publisher is really over the cap), capped at 2 Mbps, and created with no cap (bitrate 0).
Over one window, each publisher's exported video bitrate (the gauge, sampled every 0.5 s and
averaged) is compared with what aiortc's own getStats says it sent; over_cap must be 1, 0, 0
and the uncapped room exports cap 0.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from lab.janus import LabRoom
from tests.conftest import sample
from tests.e2e.conftest import JanusLab, PublishFactory

pytestmark = pytest.mark.e2e

CAPPED, ROOMY, OPEN = 2001, 2002, 2003
CAPS = {CAPPED: 128_000, ROOMY: 2_000_000, OPEN: 0}
SETTLE = 5.0  # seconds for Janus's REMB ramp (cap/4, /3, /2, cap) and the encoder to settle
WINDOW = 8.0  # seconds over which client and daemon are compared
STEP = 0.5
RTP_OVERHEAD = 24  # bytes per packet Janus counts and aiortc's bytesSent does not (header, ext)


@pytest.fixture
def janus_settings() -> dict[str, Any]:
    return {
        "rooms": (
            LabRoom(1234),
            LabRoom(CAPPED, bitrate=CAPS[CAPPED]),
            LabRoom(ROOMY, bitrate=CAPS[ROOMY]),
            LabRoom(OPEN, bitrate=0, bitrate_cap=False),
        )
    }


def labels(lab: JanusLab, room: int, publisher: Any) -> dict[str, str]:
    return {"server": lab.name, "room": str(room), "publisher": str(publisher.id)}


async def test_exported_bitrate_matches_what_each_publisher_sent(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """Within 10% of what getStats says went on the wire (payload plus RTP headers) for video
    in each room; over_cap 1 / 0 / 0; cap 0 exported."""
    publishers = {room: await publish(f"pub-{room}", room=room) for room in CAPS}
    await asyncio.sleep(SETTLE)
    before = {room: await p.sent("video") for room, p in publishers.items()}
    gauges: dict[int, list[float]] = {room: [] for room in CAPS}
    over: dict[int, set[float | None]] = {room: set() for room in CAPS}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WINDOW
    while loop.time() < deadline:
        samples = await janus_lab.samples()
        for room, publisher in publishers.items():
            where = labels(janus_lab, room, publisher)
            value = sample(
                samples, "janus_videoroom_publisher_bitrate_bits_per_second", **where, kind="video"
            )
            if value is not None:
                gauges[room].append(value)
            over[room].add(sample(samples, "janus_videoroom_publisher_over_cap", **where))
        await asyncio.sleep(STEP)
    after = {room: await p.sent("video") for room, p in publishers.items()}

    report = []
    for room in CAPS:
        (t0, bytes0, packets0), (t1, bytes1, packets1) = before[room], after[room]
        sent = 8 * (bytes1 - bytes0) / (t1 - t0)
        on_wire = 8 * (bytes1 - bytes0 + RTP_OVERHEAD * (packets1 - packets0)) / (t1 - t0)
        exported = statistics.mean(gauges[room])
        error = (exported - sent) / sent
        report.append(
            f"room {room} (cap {CAPS[room]}): getStats {sent / 1000:.0f} kbps payload, "
            f"{on_wire / 1000:.0f} kbps with RTP headers; exported {exported / 1000:.0f} kbps "
            f"({error:+.1%} vs payload, {(exported - on_wire) / on_wire:+.1%} vs packets)"
        )
        assert len(gauges[room]) >= WINDOW / STEP / 2, (room, gauges[room])
        # Janus counts whole RTP packets; aiortc's bytesSent only payloads (2-5% less).
        assert abs((exported - on_wire) / on_wire) <= 0.10, report
        assert abs(error) <= 0.12, report
    for room, publisher in publishers.items():
        connection = janus_lab.daemon.runtime.signals.ice.of(
            janus_lab.server, (publisher.session_id, publisher.handle_id)
        )
        assert connection is not None and connection.setup_seconds is not None
        report.append(f"room {room}: setup {connection.setup_seconds:.3f} s")
    print("\n".join(report))
    assert over == {CAPPED: {1.0}, ROOMY: {0.0}, OPEN: {0.0}}, over
    samples = await janus_lab.samples()
    cap = "janus_videoroom_room_bitrate_cap_bits_per_second"
    assert sample(samples, cap, server=janus_lab.name, room=str(OPEN)) == 0
    assert sample(samples, cap, server=janus_lab.name, room=str(CAPPED)) == CAPS[CAPPED]
    received = "janus_videoroom_publisher_received_bytes_total"
    for room, publisher in publishers.items():
        total = sample(samples, received, **labels(janus_lab, room, publisher), kind="video")
        assert total is not None and total >= after[room][1] * 0.9  # everything since the start
