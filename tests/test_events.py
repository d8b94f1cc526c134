"""The event decoder against real Janus 1.1.2 webhook bodies and hand-made edge cases."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeError, DecodeNotes
from monitor.decode.records import (
    CandidateEvent,
    ConnectionEvent,
    CoreEvent,
    MediaStat,
    MediaStatsEvent,
    PluginEvent,
    SelectedPairEvent,
    UnknownEvent,
)
from monitor.decode.videoroom import PublisherGone, SubscriberStreams, SubscriberUp
from tests.conftest import EVENTS, body_paths, events_of, items_of, scenarios

SERVER = "janus-lab-1"


def first(scenario: str, predicate: Any) -> dict[str, Any]:
    for path in body_paths(scenario):
        for item in items_of(path):
            if predicate(item):
                return copy.deepcopy(item)
    raise AssertionError(f"no such event in {scenario}")


def stats_item() -> dict[str, Any]:
    return first("10-media", lambda e: e["type"] == 32 and e.get("subtype") == 3)


@pytest.mark.parametrize("scenario", scenarios())
def test_every_fixture_body_decodes(scenario: str) -> None:
    """Every item of every captured body decodes, with nothing unknown to the decoder."""
    notes = DecodeNotes()
    count = 0
    for path in body_paths(scenario):
        for item in items_of(path):
            event = decode_event(item, notes)
            assert event.emitter == SERVER
            assert not isinstance(event.body, UnknownEvent)
            count += 1
    assert count > 0
    assert notes.unknown == {}


def test_the_gzip_twins_match_their_decoded_copies() -> None:
    """Each captured gzip body inflates to compact JSON equal to the .json copy beside it."""
    import gzip

    pairs = sorted((EVENTS / "56-evh-compress-burst").glob("*.json.gz"))
    assert len(pairs) == 75
    for gz in pairs:
        inflated = gzip.decompress(gz.read_bytes())
        assert inflated.startswith(b'[{"emitter":')  # json = "compact"
        assert json.loads(inflated) == json.loads(gz.with_suffix("").read_bytes())


def test_media_stats_fields() -> None:
    """A stats object becomes one MediaStat with counters as integers and bps derivable."""
    event = decode_event(stats_item(), DecodeNotes())
    assert isinstance(event.body, MediaStatsEvent)
    (stat,) = event.body.stats
    assert (stat.mid, stat.kind, stat.layer, stat.codec) == ("0", "video", 0, "vp8")
    assert stat.packets_received == 169
    assert stat.bytes_received_lastsec is not None
    assert stat.remb_bitrate is None  # the publisher never sent REMB
    assert event.session_id == 3647527005210999
    assert event.opaque_id == "lab-publisher-1"


def test_combined_media_stats_array() -> None:
    """With combine_media_stats, one event carries an array; each entry is keyed by its mid."""
    video = stats_item()
    audio = first(
        "10-media", lambda e: e["type"] == 32 and e.get("subtype") == 3 and e["event"]["mid"] == "1"
    )
    combined = dict(video, event=[video["event"], audio["event"]])
    event = decode_event(combined, DecodeNotes())
    assert isinstance(event.body, MediaStatsEvent)
    assert [(s.mid, s.kind) for s in event.body.stats] == [("0", "video"), ("1", "audio")]


def test_data_channel_and_simulcast_stats() -> None:
    """Data-channel stats have fewer fields (absent = None); video-sim2 is layer 2 of video."""
    base = stats_item()
    data = dict(
        base,
        event=[
            {
                "mid": "2",
                "mindex": 2,
                "media": "data",
                "packets-received": 3,
                "bytes-received": 120,
            },
            {"mid": "0", "mindex": 0, "media": "video-sim2", "bytes-received-lastsec": 9000},
        ],
    )
    notes = DecodeNotes()
    event = decode_event(data, notes)
    assert isinstance(event.body, MediaStatsEvent)
    channel, layer = event.body.stats
    assert (channel.kind, channel.bytes_received, channel.bytes_received_lastsec) == (
        "data",
        120,
        None,
    )
    assert (layer.kind, layer.layer, layer.bytes_received_lastsec) == ("video", 2, 9000)
    assert notes.unknown == {}


def test_stats_tolerate_odd_values() -> None:
    """A non-numeric counter reads as absent and a non-object entry is skipped, not fatal."""
    base = stats_item()
    base["event"] = [dict(base["event"], **{"bytes-received": "lots"}), "junk"]
    notes = DecodeNotes()
    event = decode_event(base, notes)
    assert isinstance(event.body, MediaStatsEvent)
    assert len(event.body.stats) == 1 and event.body.stats[0].bytes_received is None
    assert notes.unknown == {"field": 1}


def test_remote_candidate_loses_its_trailing_crlf() -> None:
    """A remote candidate forwarded with a trailing CRLF (10-media 00028) is stripped."""
    events = [e for e in events_of("10-media", upto="00028") if isinstance(e.body, CandidateEvent)]
    prflx = [e.body for e in events if "prflx" in e.body.candidate]
    assert prflx and prflx[0].candidate.endswith("rport 60980")
    assert {e.body.side for e in events} == {"local", "remote"}


def test_selected_pair_endpoints() -> None:
    """The selected pair keeps the typed endpoints Janus adds with libnice TCP support."""
    pair = next(e.body for e in events_of("10-media") if isinstance(e.body, SelectedPairEvent))
    assert pair.local is not None and pair.remote is not None
    assert (pair.local.type, pair.remote.address) == ("host", "127.0.0.1")


def test_hangup_reasons() -> None:
    """The ICE, DTLS and Close PC hangups of the captures keep their reason strings."""
    reasons = {
        e.body.reason
        for scenario in ("10-media", "30-ice-deadport", "30-ice-nat11")
        for e in events_of(scenario)
        if isinstance(e.body, ConnectionEvent) and e.body.connection == "hangup"
    }
    assert reasons == {"Close PC", "ICE failed", "DTLS timeout"}


def test_videoroom_context_free_events() -> None:
    """kicked/unpublished/leaving carry no session or handle, only room and id (1.1.2 quirk)."""
    gone = [e for e in events_of("40-reuse") if isinstance(e.body, PublisherGone)]
    assert {e.body.reason for e in gone} == {"unpublished", "leaving"}
    assert all(e.session_id is None and e.handle_id is None for e in gone)
    unpublished = [e.body.publisher for e in gone if e.body.reason == "unpublished"]
    assert unpublished.count("3642445533640425") == 2  # sent twice


def test_subscriber_update_with_publisher_context() -> None:
    """40-reuse 00063: a subscriber-shaped `updated` arrives with the publisher's handle."""
    event = next(
        e
        for e in events_of("40-reuse", upto="00063")
        if isinstance(e.body, SubscriberStreams)
        and e.body.update
        and e.handle_id == 8654044066383734
    )
    assert isinstance(event.body, SubscriberStreams)
    active = [s.feed for s in event.body.streams if s.active]
    assert active == ["8003022499398413"]


def test_subscribed_room_is_not_required() -> None:
    """`subscribed` decodes even when its room is missing or the integer 0 (string_ids bug)."""
    raw = {
        "emitter": SERVER,
        "type": 64,
        "session_id": 1,
        "handle_id": 2,
        "event": {"plugin": "janus.plugin.videoroom", "data": {"event": "subscribed"}},
    }
    assert decode_event(raw, DecodeNotes()).body == SubscriberUp(None)


def test_core_started_info() -> None:
    """The core `started` event carries server_info: version and the NAT facts."""
    event = events_of("00-startup")[0]
    assert isinstance(event.body, CoreEvent) and event.body.status == "started"
    info = event.body.info
    assert info is not None
    assert (info.version, info.server_name, info.public_ip) == (1102, "janus-lab-1", None)
    assert info.mdns_enabled is False
    assert "janus.plugin.videoroom" in info.plugins
    assert info.event_handler_names == ("janus.eventhandler.sampleevh",)
    nat = events_of("31-startup-nat11")[0]
    assert isinstance(nat.body, CoreEvent) and nat.body.info is not None
    assert nat.body.info.public_ip == "10.255.255.1"


def test_unknown_type_subtype_field_and_plugin_event_are_counted() -> None:
    """Unknown parts are counted by kind and the events still decode."""
    notes = DecodeNotes()
    unknown_type = decode_event({"emitter": SERVER, "type": 512, "event": {}}, notes)
    assert isinstance(unknown_type.body, UnknownEvent)
    decode_event({"emitter": SERVER, "type": 16, "subtype": 9, "event": {}}, notes)
    decode_event({"emitter": SERVER, "type": 128, "event": {}, "new-field": 1}, notes)
    other = decode_event(
        {
            "emitter": SERVER,
            "type": 64,
            "event": {
                "plugin": "janus.plugin.videoroom",
                "data": {"event": "teleported", "room": 1},
            },
        },
        notes,
    )
    assert other.body == PluginEvent("janus.plugin.videoroom", "teleported")
    assert notes.unknown == {"type": 1, "subtype": 1, "field": 1, "plugin_event": 1}


def test_other_plugins_are_passed_through() -> None:
    """A plugin this daemon does not model decodes to a PluginEvent with its name."""
    raw = {
        "emitter": SERVER,
        "type": 64,
        "event": {"plugin": "janus.plugin.echotest", "data": {"event": "done"}},
    }
    assert decode_event(raw, DecodeNotes()).body == PluginEvent("janus.plugin.echotest", "done")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "event is not a JSON object"),
        ({"emitter": SERVER}, "event has no integer 'type'"),
        ({"emitter": SERVER, "type": "1"}, "event has no integer 'type'"),
        ({"type": 1, "event": {"name": "created"}}, "event has no 'emitter' string"),
        ({"emitter": "", "type": 1}, "event has no 'emitter' string"),
        (
            {"emitter": SERVER, "type": 1, "session_id": "5", "event": {"name": "created"}},
            "event 'session_id' and 'handle_id' must be integers",
        ),
        ({"emitter": SERVER, "type": 1, "event": []}, "session event body is not a JSON object"),
        ({"emitter": SERVER, "type": 1, "event": {}}, "session event has no 'name' string"),
        (
            {
                "emitter": SERVER,
                "type": 64,
                "event": {"plugin": "janus.plugin.videoroom", "data": {"event": "joined", "id": 1}},
            },
            "videoroom 'joined' event has no room id",
        ),
        (
            {
                "emitter": SERVER,
                "type": 64,
                "event": {
                    "plugin": "janus.plugin.videoroom",
                    "data": {"event": "joined", "room": 1},
                },
            },
            "videoroom 'joined' event has no participant id",
        ),
        (
            {"emitter": SERVER, "type": 8, "event": {"owner": "local"}},
            "jsep event has no 'jsep' object",
        ),
    ],
)
def test_unusable_events_are_rejected_with_a_reason(raw: Any, message: str) -> None:
    """An event that is structurally wrong raises DecodeError saying what is wrong."""
    with pytest.raises(DecodeError) as error:
        decode_event(raw, DecodeNotes())
    assert str(error.value) == message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    event_type=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 256, 3]),
    subtype=st.integers(min_value=0, max_value=7),
    body=json_values,
)
def test_any_json_body_decodes_or_is_rejected_cleanly(
    event_type: int, subtype: int, body: Any
) -> None:
    """Whatever JSON a body holds, decoding either succeeds or raises DecodeError, nothing else."""
    raw = {"emitter": SERVER, "type": event_type, "subtype": subtype, "event": body}
    with contextlib.suppress(DecodeError):
        decode_event(raw, DecodeNotes())


@given(data=json_values)
def test_any_videoroom_data_decodes_or_is_rejected_cleanly(data: Any) -> None:
    """Any VideoRoom `data` payload decodes or raises DecodeError, nothing else."""
    for name in ("joined", "published", "updated", "subscribing", "kicked", "configured"):
        payload = dict(data, event=name) if isinstance(data, dict) else data
        raw = {
            "emitter": SERVER,
            "type": 64,
            "event": {"plugin": "janus.plugin.videoroom", "data": payload},
        }
        with contextlib.suppress(DecodeError):
            decode_event(raw, DecodeNotes())


def test_fixture_bodies_are_what_janus_sent() -> None:
    """The captures are byte-exact: 1.1.2's indented bodies use a 3-space indent."""
    text = (EVENTS / "10-media" / "00002.json").read_text()
    assert text.startswith("[\n   {\n      ")
    assert json.loads(text)[0]["type"] == 1


def test_reports_of_one_stream_share_one_key_and_one_kind_string() -> None:
    """Two decodes of the same stats give the same (mid, layer) tuple object and the module's
    kind string, so the tables keyed on streams hold one copy however many reports came."""

    def first_stat() -> MediaStat:
        return next(e.body for e in events_of("10-media") if isinstance(e.body, MediaStatsEvent)
                    ).stats[0]  # fmt: skip

    first, second = first_stat(), first_stat()
    assert first.stream == (first.mid, first.layer)
    assert first.stream is second.stream
    assert first.kind is second.kind


def test_plugin_and_transport_names_are_shared_between_decodes() -> None:
    """Every handle's plugin and every session's transport is one string however many events
    named it, not a copy per decode (20 k handles kept 20 k copies of each)."""
    attached = [
        e.body for e in events_of("10-media") if getattr(e.body, "name", None) == "attached"
    ]
    created = [e.body for e in events_of("10-media") if getattr(e.body, "name", None) == "created"]
    assert len(attached) >= 2 and len(created) >= 2
    assert attached[0].plugin == "janus.plugin.videoroom"
    assert all(body.plugin is attached[0].plugin for body in attached)
    assert created[0].transport is not None
    assert all(body.transport is created[0].transport for body in created)
