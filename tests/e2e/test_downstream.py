"""Downstream impact on a real Janus 1.1.2: a subscriber made to suffer (30% of its incoming
RTP dropped inside the aiortc client) is counted degraded once Janus itself reports the loss;
a clean subscriber in the same room is not, and a clean room counts 0."""

from __future__ import annotations

import pytest

from tests.conftest import sample
from tests.e2e.conftest import ROOM, JanusLab, PublishFactory, SubscribeFactory

pytestmark = pytest.mark.e2e

DEGRADED = "janus_videoroom_room_subscribers_degraded"
LOSS_MAX = "janus_videoroom_room_subscriber_loss_ratio_max"


async def test_a_lossy_subscriber_is_degraded_and_a_clean_one_is_not(
    janus_lab: JanusLab, publish: PublishFactory, subscribe: SubscribeFactory
) -> None:
    """Clean room: 0 degraded. Then a subscriber dropping 30%: Janus's lost-by-remote for it
    rises, and the room counts exactly 1 degraded subscriber, with a loss ratio above 5%."""
    alice = await publish("alice")
    clean = await subscribe([alice.id])
    room = {"server": janus_lab.name, "room": str(ROOM)}
    quality = janus_lab.daemon.runtime.signals.quality

    async def clean_and_measured() -> None:
        down = quality.of(janus_lab.server, (clean.session_id, clean.handle_id))
        assert down is not None and down.moved, "no receiver reports for the clean viewer yet"
        samples = await janus_lab.samples()
        assert sample(samples, DEGRADED, **room) == 0

    await janus_lab.eventually(clean_and_measured, "the clean room measured", within=15.0)

    lossy = await subscribe([alice.id], drop_share=0.3)

    async def janus_reports_the_loss() -> None:
        down = quality.of(janus_lab.server, (lossy.session_id, lossy.handle_id))
        assert down is not None
        lost = sum(stream.lost_by_remote for stream in down.streams.values())
        assert lost > 0, f"Janus reports no lost-by-remote yet ({lossy.dropped} dropped)"

    await janus_lab.eventually(janus_reports_the_loss, "Janus's lost-by-remote", within=15.0)

    async def one_degraded() -> None:
        samples = await janus_lab.samples()
        assert sample(samples, DEGRADED, **room) == 1
        worst = sample(samples, LOSS_MAX, **room)
        assert worst is not None and worst > 0.05, worst
        # In the same check: the next stats report may move a ratio near its threshold.
        down = quality.of(janus_lab.server, (lossy.session_id, lossy.handle_id))
        healthy = quality.of(janus_lab.server, (clean.session_id, clean.handle_id))
        assert down is not None and down.degraded()
        assert healthy is not None and not healthy.degraded()

    await janus_lab.eventually(one_degraded, "the lossy subscriber counted", within=20.0)
    down = quality.of(janus_lab.server, (lossy.session_id, lossy.handle_id))
    assert down is not None
    print(
        f"lossy viewer: {lossy.dropped} packets dropped, loss ratio {down.loss_ratio()}, "
        f"link quality {down.link_quality}, REMB {down.remb}, sent {down.sent_bitrate:.0f} bps"
    )
