"""Real media through a real Janus 1.1.2: what the daemon makes of the events alone.

Two aiortc publishers (VP8 at about 250 kbps plus Opus) and one subscriber to both, in the
static room 1234, inside the lab network namespace. Only event-driven state is checked here
(sampleevh deliveries); poll-based checks come with the Admin API poller.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import (
    publisher_info,
    publishing,
    received,
    sample,
    series,
)
from tests.e2e.conftest import ROOM, JanusLab, PublishFactory, SubscribeFactory

pytestmark = pytest.mark.e2e

R = str(ROOM)
EXPECTED_TYPES = {"session", "handle", "jsep", "webrtc", "media", "plugin", "core", "transport"}
# aiortc's VP8 encoder never targets less than 250 kbps; Janus's REMB (room cap 256 kbps)
# keeps it near there. A real encoder at work shows well above this floor.
MIN_VIDEO_BYTES_PER_SECOND = 20_000


async def nothing_rejected(lab: JanusLab) -> None:
    """No event or body refused, nothing unknown or dropped, every delivery answered 200."""
    samples = await lab.samples()
    metric = "janus_monitor_events_rejected_total"
    rejected = {
        labels["reason"]: samples[(metric, frozenset(labels.items()))]
        for labels in series(samples, metric)
    }
    assert set(rejected.values()) <= {0.0}, rejected
    assert series(samples, "janus_monitor_events_unknown_total") == []
    assert series(samples, "janus_monitor_state_dropped_total") == []
    codes = {
        (labels["transport"], labels["code"])
        for labels in series(samples, "janus_monitor_webhook_requests_total")
    }
    assert codes == {("http", "200")}, codes


async def room_with_media(
    lab: JanusLab, publish: PublishFactory, subscribe: SubscribeFactory
) -> tuple[Any, Any, Any]:
    """alice and bob publish, a viewer subscribes to both; returns them once media flows."""
    alice = await publish("alice")
    bob = await publish("bob")
    viewer = await subscribe([alice.id, bob.id])
    assert {t.feed for t in viewer.tracks.values()} == {alice.id, bob.id}
    assert sorted(t.kind for t in viewer.tracks.values()) == ["audio", "audio", "video", "video"]
    return alice, bob, viewer


async def test_publishers_and_a_subscriber_reach_the_daemon_through_events(
    janus_lab: JanusLab, publish: PublishFactory, subscribe: SubscribeFactory
) -> None:
    """Two publishers and a subscriber with real media: every event type arrives, media stats
    land on their handles, and the room, publisher and subscriber gauges match."""
    lab, name = janus_lab, janus_lab.name
    alice, bob, viewer = await room_with_media(lab, publish, subscribe)
    keys = {
        "alice": (alice.session_id, alice.handle_id),
        "bob": (bob.session_id, bob.handle_id),
        "viewer": (viewer.session_id, viewer.handle_id),
    }

    async def every_type_arrived() -> None:
        counts = received(await lab.samples(), name)
        assert {t for t, n in counts.items() if n > 0} >= EXPECTED_TYPES, counts

    await lab.eventually(every_type_arrived, "events of every type")

    async def media_stats_on_handles() -> None:
        for who, key in keys.items():
            handle = lab.server.handle(key)
            assert handle is not None, f"{who}'s handle {key} is not tracked"
            assert handle.pc_up, f"{who}'s PeerConnection is not up"
            kinds = set(handle.media.values())
            assert kinds == {"audio", "video"}, f"{who}: media stats for {kinds}"
        for who in ("alice", "bob"):
            handle = lab.server.handle(keys[who])
            assert handle is not None
            media = lab.daemon.runtime.signals.bitrate.of(lab.server, keys[who])
            rate = media.bitrate("video") if media else None
            assert rate is not None and rate >= 8 * MIN_VIDEO_BYTES_PER_SECOND, (who, rate)
        handle = lab.server.handle(keys["viewer"])
        assert handle is not None
        video = [key for key, kind in handle.media.items() if kind == "video"]
        assert len(video) == 2, handle.media  # one video stream per feed
        down = lab.daemon.runtime.signals.quality.of(lab.server, keys["viewer"])
        assert down is not None
        sent = [stream.sent_lastsec if (stream := down.streams.get(key)) else None for key in video]
        assert all(n is not None and n > 0 for n in sent), sent

    await lab.eventually(media_stats_on_handles, "media stats of the three handles")

    async def gauges_match() -> None:
        samples = await lab.samples()
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=R) == 2
        assert sample(samples, "janus_videoroom_room_subscribers", server=name, room=R) == 1
        assert publisher_info(samples, name) == {
            (R, str(alice.id), "alice"),
            (R, str(bob.id), "bob"),
        }
        assert publishing(samples, name) == {str(alice.id): 1, str(bob.id): 1}
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 3
        assert sample(samples, "janus_monitor_tracked", kind="handles") == 3
        subscriber = lab.server.subscribers.get(keys["viewer"])
        assert subscriber is not None
        assert subscriber.feed_ids == {str(alice.id), str(bob.id)}
        assert subscriber.pc_up

    await lab.eventually(gauges_match, "room, publisher and subscriber gauges")
    await nothing_rejected(lab)


async def test_participants_leaving_take_their_series_with_them(
    janus_lab: JanusLab, publish: PublishFactory, subscribe: SubscribeFactory
) -> None:
    """A subscriber's hangup and detach, a publisher's leave, another's unpublish and detach:
    each step shows in the gauges, and at the end nothing of them is tracked or exported."""
    lab, name = janus_lab, janus_lab.name
    alice, bob, viewer = await room_with_media(lab, publish, subscribe)
    viewer_key = (viewer.session_id, viewer.handle_id)

    async def all_in() -> None:
        samples = await lab.samples()
        assert sample(samples, "janus_videoroom_room_subscribers", server=name, room=R) == 1
        assert publishing(samples, name) == {str(alice.id): 1, str(bob.id): 1}

    await lab.eventually(all_in, "two publishers and a subscriber")

    # The viewer's PeerConnection is hung up: its handle stays, the PC is down.
    await viewer.hangup()

    async def viewer_hung_up() -> None:
        handle = lab.server.handle(viewer_key)
        assert handle is not None
        assert not handle.pc_up

    await lab.eventually(viewer_hung_up, "viewer hung up")

    # The viewer detaches and destroys its session: no subscriber left in the room.
    await viewer.close()

    async def viewer_gone() -> None:
        samples = await lab.samples()
        assert sample(samples, "janus_videoroom_room_subscribers", server=name, room=R) == 0
        assert lab.server.subscribers == {}
        assert lab.server.handle(viewer_key) is None
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 2

    await lab.eventually(viewer_gone, "viewer detached")

    # alice leaves the room: her series go, her handle stays until she closes.
    left = await alice.leave()
    assert left.data.get("leaving") == "ok", left.data

    async def alice_left() -> None:
        samples = await lab.samples()
        assert publisher_info(samples, name) == {(R, str(bob.id), "bob")}
        assert publishing(samples, name) == {str(bob.id): 1}
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=R) == 1
        handle = lab.server.handle((alice.session_id, alice.handle_id))
        assert handle is not None
        assert handle.room is None

    await lab.eventually(alice_left, "alice left")
    await alice.close()

    # bob unpublishes: still in the room, no longer publishing.
    unpublished = await bob.unpublish()
    assert unpublished.data.get("unpublished") == "ok", unpublished.data

    async def bob_unpublished() -> None:
        samples = await lab.samples()
        assert publishing(samples, name) == {str(bob.id): 0}
        assert publisher_info(samples, name) == {(R, str(bob.id), "bob")}

    await lab.eventually(bob_unpublished, "bob unpublished")

    # bob detaches without leaving (Janus sends unpublished and leaving without a handle).
    await bob.close()

    async def nobody_left() -> None:
        samples = await lab.samples()
        assert publisher_info(samples, name) == set()
        assert publishing(samples, name) == {}
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=R) == 0
        assert sample(samples, "janus_videoroom_room_subscribers", server=name, room=R) == 0
        for kind in ("sessions", "handles", "publishers", "subscribers"):
            assert sample(samples, "janus_monitor_tracked", kind=kind) == 0, kind
        assert lab.server.sessions == {}
        assert lab.server.publishers == {}

    await lab.eventually(nobody_left, "everyone gone")
    await nothing_rejected(lab)
