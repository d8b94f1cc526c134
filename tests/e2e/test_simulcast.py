"""A real browser publisher: headless Chromium (Debian ``chromium``) sending three simulcast
layers into an uncapped room on a real Janus 1.1.2. The exported video bitrate must be the
sum of the layers Janus receives, judged against Janus's own handle_info (in fixture
60-simulcast-chromium, Chromium's getStats overstated its lowest layer 12x before any cap)
and reported beside Chromium's getStats per rid."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import aiohttp
import pytest

from lab.chromium import Chromium, ChromiumPublisher
from lab.janus import LabRoom
from monitor.config import Secret
from monitor.decode.media import stats_from_handle_info
from monitor.janus.admin import AdminClient
from tests.conftest import sample
from tests.e2e.conftest import JanusLab

pytestmark = pytest.mark.e2e

ROOM = 6060
SETTLE = 8.0  # seconds for Chromium to bring up its three layers
WINDOW = 8.0
STEP = 1.0


@pytest.fixture
def janus_settings() -> dict[str, Any]:
    return {"rooms": (LabRoom(1234), LabRoom(ROOM, bitrate=0, bitrate_cap=False))}


async def test_simulcast_layers_are_summed_like_janus_receives_them(
    janus_lab: JanusLab, chromium: Chromium
) -> None:
    """Three video layers at the daemon; its video bitrate within 10% of the sum of Janus's
    handle_info layers over the same window; over_cap 0 in a room without a cap."""
    publisher = await ChromiumPublisher(chromium, janus_lab.janus_url, ROOM, "chrome").start()
    try:
        await asyncio.sleep(SETTLE)
        key = (publisher.session_id, publisher.handle.handle_id if publisher.handle else 0)
        labels = {"server": janus_lab.name, "room": str(ROOM), "publisher": str(publisher.id)}
        t0, before = await publisher.sent()
        exported: list[float] = []
        janus: list[float] = []
        layers_seen: set[int] = set()
        async with aiohttp.ClientSession() as http:
            admin = AdminClient(http, janus_lab.cfg.admin_url, Secret(janus_lab.cfg.admin_secret))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WINDOW
            while loop.time() < deadline:
                samples = await janus_lab.samples()
                value = sample(samples, "janus_videoroom_publisher_bitrate_bits_per_second",
                               **labels, kind="video")  # fmt: skip
                if value is not None:
                    exported.append(value)
                info = await admin.handle_info(*key)
                stats = stats_from_handle_info(info.get("webrtc")) or ()
                video = [s for s in stats if s.kind == "video"]
                janus.append(8.0 * sum(s.bytes_received_lastsec or 0 for s in video))
                media = janus_lab.daemon.runtime.signals.bitrate.of(janus_lab.server, key)
                if media is not None:
                    layers_seen |= {layer for (_, layer), seen in media.layers.items()
                                    if seen.kind == "video" and seen.lastsec}  # fmt: skip
                await asyncio.sleep(STEP)
        t1, after = await publisher.sent()
        connection = janus_lab.daemon.runtime.signals.ice.of(janus_lab.server, key)
        setup = connection.setup_seconds if connection is not None else None
        over = sample(await janus_lab.samples(), "janus_videoroom_publisher_over_cap", **labels)
    finally:
        await publisher.close()

    assert layers_seen == {0, 1, 2}, layers_seen
    ours, theirs = statistics.mean(exported), statistics.mean(janus)
    rids = {
        rid: 8 * (after[rid]["bytes"] + after[rid]["headers"]
                  - before[rid]["bytes"] - before[rid]["headers"]) / (t1 - t0)
        for rid in after if rid in before
    }  # fmt: skip
    print(
        f"chromium simulcast: exported {ours / 1000:.0f} kbps, Janus handle_info "
        f"{theirs / 1000:.0f} kbps ({(ours - theirs) / theirs:+.1%}); getStats per rid "
        + ", ".join(f"{rid} {bps / 1000:.0f} kbps" for rid, bps in sorted(rids.items()))
        + f" (sum {sum(rids.values()) / 1000:.0f} kbps); setup {setup} s"
    )
    assert setup is not None and 0 < setup < 5
    assert abs(ours - theirs) / theirs <= 0.10
    assert ours > 300_000  # three layers of 720p/360p/180p, not one
    assert over == 0
