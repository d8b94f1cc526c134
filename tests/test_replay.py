"""Replaying captured scenarios over HTTP into a running daemon: gauges come and go."""

from __future__ import annotations

from monitor.decode.records import TYPE_LABELS
from tests.conftest import Daemon, body_paths, items_of, sample, series

SERVER = "janus-lab-1"


async def replay(daemon: Daemon, scenario: str, start: str = "", upto: str = "99999") -> None:
    for path in body_paths(scenario):
        if start < path.stem <= upto or (start == "" and path.stem <= upto):
            status, reply, _ = await daemon.post_events(path.read_bytes())
            assert status == 200 and reply["rejected"] == 0, (path, reply)


async def test_media_scenario_gauges_and_their_disappearance(daemon: Daemon) -> None:
    """10-media: 1 publisher and 1 subscriber in room 4321; after kick and destroy, all gone."""
    await replay(daemon, "10-media", upto="00034")
    m = await daemon.metrics()
    assert sample(m, "janus_videoroom_rooms", server=SERVER) == 1
    assert sample(m, "janus_videoroom_room_publishers", server=SERVER, room="4321") == 1
    assert sample(m, "janus_videoroom_room_subscribers", server=SERVER, room="4321") == 1
    assert (
        sample(m, "janus_videoroom_room_bitrate_cap_bits_per_second", server=SERVER, room="4321")
        == 128000
    )
    info = series(m, "janus_videoroom_publisher_info")
    assert info == [
        {"server": SERVER, "room": "4321", "publisher": "2244074596607377", "display": "alice"}
    ]
    assert sample(m, "janus_monitor_tracked", kind="handles") == 2
    assert sample(m, "janus_monitor_tracked", kind="sessions") == 2

    await replay(daemon, "10-media", start="00034", upto="00065")  # the kick
    m = await daemon.metrics()
    assert sample(m, "janus_videoroom_room_publishers", server=SERVER, room="4321") == 0
    assert sample(m, "janus_videoroom_room_subscribers", server=SERVER, room="4321") == 1
    assert series(m, "janus_videoroom_publisher_info") == []
    assert series(m, "janus_videoroom_publisher_publishing") == []

    await replay(daemon, "10-media", start="00065", upto="00081")  # room destroyed
    m = await daemon.metrics()
    assert sample(m, "janus_videoroom_rooms", server=SERVER) == 0
    for name in (
        "janus_videoroom_room_publishers",
        "janus_videoroom_room_subscribers",
        "janus_videoroom_room_bitrate_cap_bits_per_second",
    ):
        assert series(m, name) == [], name

    await replay(daemon, "10-media", start="00081")
    m = await daemon.metrics()
    assert sample(m, "janus_monitor_tracked", kind="handles") == 0
    assert sample(m, "janus_monitor_tracked", kind="sessions") == 0


async def test_reuse_scenario_gauges_and_their_disappearance(daemon: Daemon) -> None:
    """40-reuse: 2 publishers, 1 subscriber of both in room 1234; after leaving, none."""
    await replay(daemon, "40-reuse", upto="00050")
    m = await daemon.metrics()
    assert sample(m, "janus_videoroom_room_publishers", server=SERVER, room="1234") == 2
    assert sample(m, "janus_videoroom_room_subscribers", server=SERVER, room="1234") == 1
    displays = sorted(s["display"] for s in series(m, "janus_videoroom_publisher_info"))
    assert displays == ["alice", "bob"]

    await replay(daemon, "40-reuse", start="00050", upto="00065")  # alice unpublished
    m = await daemon.metrics()
    alice = {"server": SERVER, "room": "1234", "publisher": "3642445533640425"}
    assert sample(m, "janus_videoroom_publisher_publishing", **alice) == 0
    assert sample(m, "janus_videoroom_room_publishers", server=SERVER, room="1234") == 2

    await replay(daemon, "40-reuse", start="00065")
    m = await daemon.metrics()
    assert sample(m, "janus_videoroom_rooms", server=SERVER) == 1
    assert sample(m, "janus_videoroom_room_publishers", server=SERVER, room="1234") == 0
    assert sample(m, "janus_videoroom_room_subscribers", server=SERVER, room="1234") == 0
    assert series(m, "janus_videoroom_publisher_info") == []
    assert sample(m, "janus_monitor_tracked", kind="handles") == 0


async def test_events_are_counted_by_server_and_type(daemon: Daemon) -> None:
    """Every accepted event of 10-media is counted under its server and type label."""
    await replay(daemon, "10-media")
    m = await daemon.metrics()
    counts = {
        labels["type"]: sample(m, "janus_monitor_events_received_total", **labels)
        for labels in series(m, "janus_monitor_events_received_total")
    }
    expected: dict[str, int] = {}
    for path in body_paths("10-media"):
        for item in items_of(path):
            label = TYPE_LABELS[item["type"]]
            expected[label] = expected.get(label, 0) + 1
    assert counts == expected
    assert expected["media"] == 24 and expected["transport"] == 63
