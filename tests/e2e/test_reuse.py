"""Handle reuse on a real Janus 1.1.2 with aiortc participants.

A clean room (one handle per publisher, one per subscription) counts nothing. Then, on the
same handles: the viewer subscribes to a second publisher (Janus allows it: second_feed); a
publisher's handle asks to join as a subscriber, and to join as a publisher again (Janus
refuses both with 425 and emits no event: nothing may be counted).
"""

from __future__ import annotations

import pytest

from lab.webrtc import JanusError
from tests.conftest import sample, series
from tests.e2e.conftest import ROOM, JanusLab, PublishFactory, SubscribeFactory

pytestmark = pytest.mark.e2e

VIDEOROOM = "janus.plugin.videoroom"


async def test_second_feed_counts_and_refused_joins_do_not(
    janus_lab: JanusLab, publish: PublishFactory, subscribe: SubscribeFactory
) -> None:
    """Clean: 0. A `subscribe` to bob on the viewer's handle: second_feed 1 and the viewer's
    handle flagged. 425-refused joins on alice's handle: still only that one."""
    alice = await publish("alice")
    bob = await publish("bob")
    viewer = await subscribe([alice.id])

    async def tracked() -> None:
        assert janus_lab.server.subscribers, "the viewer is not tracked yet"

    await janus_lab.eventually(tracked, "the viewer's subscription")
    samples = await janus_lab.samples()
    assert series(samples, "janus_handle_reuse_total") == []

    updated = await viewer.handle.message({"request": "subscribe", "streams": [{"feed": bob.id}]})
    assert updated.data.get("videoroom") == "updated"
    for refused in (
        {"request": "join", "ptype": "subscriber", "room": ROOM, "streams": [{"feed": bob.id}]},
        {"request": "join", "ptype": "publisher", "room": ROOM, "display": "again"},
    ):
        with pytest.raises(JanusError, match="425"):
            await alice.handle.message(refused)

    labels = {"server": janus_lab.name, "plugin": VIDEOROOM}

    async def counted() -> None:
        samples = await janus_lab.samples()
        assert sample(samples, "janus_handle_reuse_total", **labels, pattern="second_feed") == 1
        assert sample(samples, "janus_handles_reused", **labels) == 1

    await janus_lab.eventually(counted, "second_feed on the viewer's handle")
    samples = await janus_lab.samples()
    patterns = {s["pattern"] for s in series(samples, "janus_handle_reuse_total")}
    assert patterns == {"second_feed"}
    server = janus_lab.server
    viewer_key = (viewer.session_id, viewer.handle_id)
    assert janus_lab.daemon.runtime.signals.reuse.reused(server, viewer_key) == {"second_feed"}
