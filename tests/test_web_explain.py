"""The JSON API's signals: /api/v1/publishers with bitrate, cap, over_cap, downstream and ICE,
and one participant explained by publisher or by handle."""

from __future__ import annotations

from tests.conftest import Daemon, body_paths
from tests.test_state import ALICE_10, PUB_HANDLE_10, PUB_SESSION_10, SERVER

DEADPORT_HANDLE = (6009573428136823, 8897503403518472)


async def post_scenario(daemon: Daemon, scenario: str, upto: str | None = None) -> None:
    for path in body_paths(scenario):
        status, answer, _ = await daemon.post_events(path.read_bytes())
        assert status == 200 and answer["rejected"] == 0
        if path.stem == upto:
            break


async def test_publishers_carry_their_signals(daemon: Daemon) -> None:
    """alice in 10-media, while she publishes: video bitrate, the room cap, over_cap true,
    one healthy viewer, her PeerConnection up with a setup time, no reuse."""
    await post_scenario(daemon, "10-media", upto="00047")
    (alice,) = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert alice["publisher"] == ALICE_10
    assert alice["bitrate"]["video"] > 200_000
    assert (alice["bitrate_cap"], alice["over_cap"]) == (128000, True)
    assert alice["downstream"] == {"subscribers": 1, "degraded": 0, "loss_ratio_max": 0.0}
    assert alice["ice"]["state"] == "up" and 0 < alice["ice"]["setup_seconds"] < 1
    assert alice["reuse"] == []


async def test_a_publisher_explained(daemon: Daemon) -> None:
    """The explain URL tells alice's story in order, with candidates typed and scoped, and
    her bitrate history."""
    await post_scenario(daemon, "10-media", upto="00047")
    body = await daemon.get_json(f"/api/v1/publishers/{SERVER}/4321/{ALICE_10}")
    handle = body["handle"]
    assert (handle["session_id"], handle["handle_id"]) == (PUB_SESSION_10, PUB_HANDLE_10)
    story = [step["what"] for step in handle["connection"]["story"]]
    assert story.index("remote offer") < story.index("local answer") < story.index("webrtcup")
    assert any(step.startswith("ice ") for step in story)
    local = handle["connection"]["candidates"]["local"]
    assert local and all(c["scope"] == "loopback" and c["type"] == "host" for c in local)
    assert handle["bitrate"]["history"] and handle["bitrate"]["received_bytes"]["video"] > 0
    assert body["over_cap"] is True


async def test_a_failed_handle_explained(daemon: Daemon) -> None:
    """30-ice-deadport's handle (kept by posting up to its hangup): failed at stage ice with
    its cause, the story ends with the hangup and the verdict."""
    paths = body_paths("30-ice-deadport")
    for path in paths:
        await daemon.post_events(path.read_bytes())
        if b"ICE failed" in path.read_bytes():
            break
    session, handle = DEADPORT_HANDLE
    body = await daemon.get_json(f"/api/v1/handles/{SERVER}/{session}/{handle}")
    connection = body["connection"]
    assert connection["failure"] == {"stage": "ice", "cause": "server_private_candidates"}
    story = [step["what"] for step in connection["story"]]
    assert story[-2:] == ["hangup ICE failed", "failed: ice, server_private_candidates"]
    assert "ice failed" in story
    remote = connection["candidates"]["remote"]
    assert [(c["type"], c["scope"]) for c in remote] == [("host", "loopback")]


async def test_unknown_participants_are_404_json(daemon: Daemon) -> None:
    """No such publisher, handle or server: 404 with a JSON error; a bad id is 400."""
    for path, status in (
        (f"/api/v1/publishers/{SERVER}/1/2", 404),
        ("/api/v1/publishers/nope/1/2", 404),
        (f"/api/v1/handles/{SERVER}/1/2", 404),
        (f"/api/v1/handles/{SERVER}/x/2", 400),
    ):
        async with daemon.http.get(daemon.url(path)) as response:
            assert response.status == status, path
            assert set(await response.json()) == {"error"}
