"""Property: whatever integers and strings a sender puts in any field of any event type, the
decoder either rejects the item cleanly or returns bounded values that state, the API and
/metrics can hold and write."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from monitor.app import build_app, build_runtime
from monitor.decode.events import MAX_SDP_CHARS, decode_event
from monitor.decode.fields import (
    INT_MAX,
    INT_MIN,
    MAX_ITEMS_PER_FIELD,
    MAX_REQUIRED_CHARS,
    DecodeError,
    DecodeNotes,
)
from monitor.decode.records import Event, JsepEvent, TransportEvent
from monitor.web.api import api_publishers, api_rooms, api_servers
from tests.conftest import EVENTS, items_of, make_config

SERVER = "janus-lab-1"


def _kind(item: dict[str, Any]) -> tuple[Any, ...]:
    body = item.get("event") if isinstance(item.get("event"), dict) else {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    return (item.get("type"), item.get("subtype"), data.get("event") or data.get("videoroom"))


def _templates() -> list[dict[str, Any]]:
    """One real Janus 1.1.2 event of every (type, subtype, VideoRoom event) in the fixtures."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in sorted(EVENTS.glob("*/[0-9]*.json")):
        for item in items_of(path):
            seen.setdefault(_kind(item), item)
    return list(seen.values())


TEMPLATES = _templates()

hostile_ints = st.one_of(
    st.integers(min_value=INT_MIN, max_value=INT_MAX),  # what orjson can hand over as an int
    st.sampled_from([0, -1, INT_MAX, INT_MIN, 2**63]),
    st.floats(allow_nan=False, allow_infinity=False),  # 1e308 and friends
    st.sampled_from([1e308, -1e308, 1.8446744073709552e19, 0.5]),
)
hostile_strings = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=5000).map(lambda n: "x" * n * 10),
    st.sampled_from(["", "\n", "\x00", "é" * 300, "janus.plugin." + "v" * 500]),
)
hostile_values = st.one_of(
    hostile_ints,
    hostile_strings,
    st.none(),
    st.booleans(),
    st.lists(st.integers(min_value=INT_MIN, max_value=INT_MAX), max_size=3),
    st.dictionaries(st.text(max_size=5), hostile_ints, max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON document (keys and indexes), containers included."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path:
        container = document
        in_dict = isinstance(container, dict) and isinstance(step, str) and step in container
        in_list = isinstance(container, list) and isinstance(step, int) and step < len(container)
        if not (in_dict or in_list):
            return  # an earlier change replaced a parent: this position is gone
        document = container[step]
    container[path[-1]] = value


@st.composite
def hostile_events(draw: st.DrawFn) -> Any:
    """A real event with some of its fields (ints, strings, anything) replaced."""
    event = orjson.loads(orjson.dumps(draw(st.sampled_from(TEMPLATES))))
    paths = _paths(event)
    body_paths = [p for p in paths if p[0] == "event"] or paths
    where = st.one_of(st.sampled_from(body_paths), st.sampled_from(paths))  # mostly the body
    for path in draw(st.lists(where, min_size=1, max_size=4)):
        _set(event, path, draw(hostile_values))
    if draw(st.integers(0, 3)):
        event["emitter"] = SERVER  # so that most reach state instead of the emitter check
    return orjson.loads(orjson.dumps(event))  # exactly what the receiver would parse


def _bounded(value: Any, where: str) -> None:
    """Every int is 64-bit, every str and tuple has its bound, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return
    if isinstance(value, int):
        assert INT_MIN <= value <= INT_MAX, where
    elif isinstance(value, str):
        limit = MAX_SDP_CHARS if where.endswith("JsepEvent.sdp") else MAX_REQUIRED_CHARS
        assert len(value) <= limit, (where, len(value))
    elif isinstance(value, tuple):
        assert len(value) <= MAX_ITEMS_PER_FIELD, where
        for index, item in enumerate(value):
            _bounded(item, f"{where}[{index}]")
    elif isinstance(value, TransportEvent):
        for name in ("transport", "connection_id", "name", "admin_api"):
            _bounded(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, Event):
        for name in Event.__struct_fields__:
            _bounded(getattr(value, name), f"{where}.Event.{name}")
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _bounded(getattr(value, f.name), f"{where}.{type(value).__name__}.{f.name}")
    else:
        raise AssertionError(f"{where}: unexpected {type(value).__name__}")


RUNTIME = build_runtime(make_config(f"targets: [{{name: {SERVER}}}]"))
APP = build_app(RUNTIME)


def _render_everything() -> None:
    """/metrics and every API view, written as they would be served."""
    generate_latest(RUNTIME.registry)
    for path, view in (
        ("/api/v1/servers", api_servers),
        ("/api/v1/rooms", api_rooms),
        ("/api/v1/publishers", api_publishers),
    ):
        response = asyncio.run(view(make_mocked_request("GET", path, app=APP)))
        assert response.status == 200
        assert isinstance(orjson.loads(response.body), dict)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_events())
def test_any_field_value_decodes_bounded_or_is_rejected(raw: Any) -> None:
    """decode_event raises only DecodeError; what it accepts is bounded, applies to state and
    renders in /metrics and the API."""
    try:
        event = decode_event(raw, DecodeNotes())
    except DecodeError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        return  # a clean rejection, with a reason for the sender
    assert isinstance(event, Event)
    assert 0 < len(event.emitter) <= 128 and event.emitter.isprintable()
    _bounded(event, "event")
    if isinstance(event.body, JsepEvent):
        assert len(event.body.sdp) <= MAX_SDP_CHARS
    RUNTIME.state.apply(event, 1000.0)
    _render_everything()


def test_templates_cover_every_event_kind() -> None:
    """The property starts from real events of every type and every modelled VideoRoom event."""
    kinds = {_kind(t) for t in TEMPLATES}
    assert {k[0] for k in kinds} >= {1, 2, 8, 16, 32, 64, 128, 256}
    videoroom = {k[2] for k in kinds if k[0] == 64}
    assert videoroom >= {"joined", "configured", "published", "subscribing", "updated", "leaving"}
