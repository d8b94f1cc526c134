"""monitor.decode.raw: session, handle and transport bodies typed from their JSON make the
records (and notes) the Python decoders make, and every other body is left to them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode.events import DECODERS
from monitor.decode.fields import DecodeError, DecodeNotes
from monitor.decode.raw import RAW_DECODERS, handle_from_raw, session_from_raw

BODIES: dict[tuple[int, int], dict[str, Any]] = {
    (1, 0): {"name": "created", "transport": {"transport": "janus.transport.http", "id": "13"}},
    (2, 0): {"name": "attached", "plugin": "janus.plugin.videoroom", "opaque_id": "o", "token": 1},
    (128, 0): {"transport": "janus.transport.http", "id": "1364",
               "data": {"event": "request", "admin_api": False, "ip": "127.0.0.1", "port": 1}},
    (8, 0): {"owner": "local", "jsep": {"type": "offer", "sdp": "v=0\r\na=candidate:1 1 udp"}},
    (16, 1): {"ice": "connected", "stream_id": 1, "component_id": 1},
    (16, 2): {"local-candidate": "1 1 udp 2015363583 127.0.0.1 33162 typ host", "stream_id": 1},
    (16, 3): {"remote-candidate": "candidate:2 1 udp 1 127.0.0.1 4 typ host\r\n"},
    (16, 4): {"selected-pair": "127.0.0.1:1 [host,udp] <-> 127.0.0.1:2 [host,udp]"},
    (16, 5): {"dtls": "connected", "retransmissions": 0},
    (16, 6): {"connection": "hangup", "reason": "Close PC"},
    (16, 9): {"what": "a subtype Janus 1.1.2 does not send"},
}  # fmt: skip
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=4), st.just("x" * 1025),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()),
    st.builds(dict, transport=st.one_of(st.integers(), st.text(max_size=3)), extra=st.none()),
)  # fmt: skip
KEYS = ("name", "transport", "id", "plugin", "opaque_id", "token", "data", "extra", "ice",
        "stream_id", "component_id", "local-candidate", "remote-candidate", "dtls",
        "retransmissions", "connection", "reason", "owner", "jsep")  # fmt: skip


def _python(kind: int, subtype: int, value: Any) -> tuple[Any, dict[str, int]] | None:
    """What the Python decoder reads from a parsed body: its record (by fields) and notes,
    or None when it refuses the body."""
    notes = DecodeNotes()
    try:
        body = DECODERS[kind](value, subtype, notes)
    except DecodeError:
        return None
    return _fields(body), notes.unknown


def _fields(body: Any) -> Any:
    names = ("transport", "connection_id", "name", "admin_api")
    if type(body).__name__ == "TransportEvent":
        return ("transport", *(getattr(body, name) for name in names))
    return body


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(BODIES)), st.data())
def test_a_body_typed_from_json_is_the_one_the_python_decoder_makes(
    key: tuple[int, int], data: Any
) -> None:
    """Real bodies with odd values at some keys, keys taken away or added, or no object at
    all: when the typed decoder answers, the Python decoder makes that record with no note."""
    kind, subtype = key
    value: Any = dict(BODIES[key])
    for key in data.draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        if data.draw(st.booleans()):
            value[key] = data.draw(ODD)
        else:
            value.pop(key, None)
    if data.draw(st.integers(min_value=0, max_value=6)) == 0:
        value = data.draw(ODD)
    raw = json.dumps(value).encode()
    typed = RAW_DECODERS[kind](msgspec.Raw(raw), subtype)
    if typed is None:
        return
    python = _python(kind, subtype, msgspec.json.decode(raw))
    assert python is not None
    assert _fields(typed) == python[0]
    assert python[1] == {}


def test_clean_bodies_are_typed_and_odd_ones_are_not() -> None:
    """Each fixture-shaped body is typed but the selected pair and an unknown subtype; an
    unknown session or handle key, a name that is not a string or is over 1024 characters,
    or a transport that is not an object sends it to Python."""
    for (kind, subtype), body in BODIES.items():
        typed = RAW_DECODERS[kind](msgspec.Raw(json.dumps(body).encode()), subtype)
        assert (typed is None) == ((kind, subtype) in ((16, 4), (16, 9))), (kind, subtype)
    for odd in ({"name": "created", "extra": 1}, {"name": 7}, {"name": "x" * 1025},
                {"name": "created", "transport": "http"}):  # fmt: skip
        assert session_from_raw(msgspec.Raw(json.dumps(odd).encode()), 0) is None, odd
    raw = msgspec.Raw(b'{"name":"attached","plugin":"p","secret":1}')
    assert handle_from_raw(raw, 0) is None
    assert RAW_DECODERS[128](msgspec.Raw(b"[1]"), 0) is None
    assert RAW_DECODERS[16](msgspec.Raw(b'{"ice":5}'), 1) is None
    assert RAW_DECODERS[8](msgspec.Raw(b'{"owner":"local","jsep":"v=0"}'), 0) is None
