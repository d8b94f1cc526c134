"""Remediation of a real browser: a headless Chromium simulcast publisher goes over its room's
cap (the room is edited to 500 kbps while it sends about 1.4 Mbps; its own cap stays the 0 it
joined with). The daemon sends cap_bitrate; Chromium lowers its rate under cap x tolerance
through Janus's REMB, and is never kicked."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import aiohttp
import pytest

from lab.chromium import Chromium, ChromiumPublisher
from lab.janus import LabRoom
from monitor.config import Secret
from monitor.janus.admin import AdminClient
from tests.conftest import sample
from tests.e2e.conftest import JanusLab
from tests.e2e.test_remediation import RULES, entries, participants

pytestmark = pytest.mark.e2e

ROOM = 6060
CAP = 500_000
TOLERANCE = 1.25
PAST_STEP_INTERVAL = 4.0  # seconds: longer than RULES' step_interval, so a kick would be due


@pytest.fixture
def janus_settings() -> dict[str, Any]:
    return {"rooms": (LabRoom(1234), LabRoom(ROOM, bitrate=0, bitrate_cap=False))}


async def video_rate(lab: JanusLab, labels: dict[str, str], seconds: float) -> float:
    values = []
    for _ in range(int(seconds * 2)):
        value = sample(await lab.samples(), "janus_videoroom_publisher_bitrate_bits_per_second",
                       **labels, kind="video")  # fmt: skip
        if value is not None:
            values.append(value)
        await asyncio.sleep(0.5)
    return statistics.mean(values)


@pytest.mark.parametrize(
    "daemon_settings",
    [{"remediation": {"mode": "enforce", "over_bitrate": {**RULES, "tolerance": TOLERANCE}}}],
    indirect=True,
)
async def test_chromium_complies_after_cap_bitrate_and_is_not_kicked(
    janus_lab: JanusLab, chromium: Chromium
) -> None:
    """Over the edited cap: cap_bitrate applied; then under cap x tolerance; no kick."""
    publisher = await ChromiumPublisher(chromium, janus_lab.janus_url, ROOM, "chrome").start()
    try:
        labels = {"server": janus_lab.name, "room": str(ROOM), "publisher": str(publisher.id)}
        await asyncio.sleep(6.0)  # three layers up
        before = await video_rate(janus_lab, labels, 3.0)
        async with aiohttp.ClientSession() as http:
            admin = AdminClient(http, janus_lab.cfg.admin_url, Secret(janus_lab.cfg.admin_secret))
            await admin.message_plugin(
                "janus.plugin.videoroom", {"request": "edit", "room": ROOM, "new_bitrate": CAP}
            )

        async def capped() -> None:
            assert entries(janus_lab, publisher, step="cap_bitrate", outcome="applied")

        took = await janus_lab.eventually(capped, "cap_bitrate applied", within=15.0)
        await asyncio.sleep(5.0)  # REMB at once, then every 5 s; the encoder follows
        after = await video_rate(janus_lab, labels, 4.0)
        await asyncio.sleep(PAST_STEP_INTERVAL)
        assert entries(janus_lab, publisher, step="kick") == []
        assert publisher.id in await participants(janus_lab, ROOM)
        print(
            f"chromium: {before / 1000:.0f} kbps before, cap_bitrate {took:.1f} s after the "
            f"room cap changed, {after / 1000:.0f} kbps after (cap {CAP // 1000} kbps)"
        )
        assert before > CAP * TOLERANCE
        assert after <= CAP * TOLERANCE
    finally:
        await publisher.close()
