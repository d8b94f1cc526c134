"""Hostile input found by review after issue 12: each fixed with its exact request."""

from __future__ import annotations

from typing import Any

import orjson
from structlog.testing import capture_logs

from lab.rawhttp import raw_http
from monitor.decode.fields import MAX_PUBLISHER_STREAMS
from monitor.decode.polls import read_participants, read_rooms
from tests.conftest import Daemon, make_config, run_daemon, sample
from tests.test_hostile import SERVER, healthy

VIDEOROOM = "janus.plugin.videoroom"


async def test_a_non_utf8_expect_header_is_400_json_without_a_traceback(daemon: Daemon) -> None:
    """`Expect: 0xff` on any route made aiohttp fail quoting it (500 and a traceback per
    request): now 400 JSON and one warning line."""
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nExpect: \xff\r\n\r\n"
    with capture_logs() as logs:
        answer = await raw_http(daemon.base, request)
    assert answer.status == 400
    assert answer.json() == {"error": "a request header is not valid text"}
    assert [e["log_level"] for e in logs] == ["warning"]
    await healthy(daemon)


async def test_sessions_are_bounded_by_max_tracked_sessions() -> None:
    """10 unique `created` sessions with max_tracked_sessions 5: 5 tracked, 5 refused and
    counted once each, however often they are named."""
    config = make_config(f"limits: {{max_tracked_sessions: 5}}\ntargets: [{{name: {SERVER}}}]")
    async for daemon in run_daemon(config):
        for second in range(2):  # a new timestamp: the same bytes again would be a resend
            created = [{"emitter": SERVER, "type": 1, "timestamp": second + 1, "session_id": s,
                        "event": {"name": "created"}} for s in range(1, 11)]  # fmt: skip
            status, answer, _ = await daemon.post_events(orjson.dumps(created))
            assert (status, answer) == (200, {"accepted": 10, "rejected": 0})
        samples = await daemon.metrics()
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 5
        dropped = "janus_monitor_state_dropped_total"
        assert sample(samples, dropped, kind="session", reason="limit") == 5


async def test_publisher_streams_are_few_and_their_kind_and_codec_bounded(daemon: Daemon) -> None:
    """A `published` with 256 streams of 256-character type and codec keeps 16 streams, with
    no kind or codec (only audio/video/data and short codec names are kept)."""
    streams = [{"mid": str(i), "type": "t" * 256, "codec": "c" * 256} for i in range(256)]
    streams[0] = {"mid": "0", "type": "video", "codec": "vp8"}
    published: dict[str, Any] = {
        "emitter": SERVER, "type": 64, "session_id": 1, "handle_id": 2,
        "event": {"plugin": VIDEOROOM, "data": {"event": "published", "room": 1, "id": 3,
                                                "streams": streams}},
    }  # fmt: skip
    status, answer, _ = await daemon.post_events(orjson.dumps(published))
    assert (status, answer) == (200, {"accepted": 1, "rejected": 0})
    (publisher,) = daemon.runtime.state.servers[SERVER].publishers.values()
    assert len(publisher.streams) == MAX_PUBLISHER_STREAMS
    assert (publisher.streams[0].kind, publisher.streams[0].codec) == ("video", "vp8")
    assert {(s.kind, s.codec) for s in publisher.streams[1:]} == {(None, None)}


def test_one_long_room_or_participant_id_does_not_void_a_poll() -> None:
    """A `list` or `listparticipants` answer with one id over 128 characters keeps the rest
    (it used to fail the whole reply, dropping every room from polls)."""
    rooms = read_rooms({"list": [{"room": "r" * 200}, {"room": 1234, "bitrate": 0}]}, 1.0)
    assert [room.room for room in rooms.rooms] == ["1234"]
    listed = {"participants": [{"id": "p" * 200}, {"id": 7, "publisher": True}]}
    participants = read_participants("1234", listed, 1.0)
    assert [p.publisher_id for p in participants.participants] == ["7"]
