"""Wrong types at every field path of real fixture events, systematically (not at random):
each of the decoder property test's templates with each position set to each value of the
wrong kind, or removed, sent through the webhook, the WebSocket and the AMQP consumer.

``make test`` sends one batch per (template, value), holding that value at every position;
``make fuzz`` (FUZZ_EXAMPLES >= 1000) sends every mutant alone as well, next to the intact
event it came from, so that each case is a mixed batch whose valid item must be kept."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzzing import EXAMPLES, Served, expect_body, serving
from tests.test_events_property import TEMPLATES, _paths, _set
from tests.test_fuzz_ws_amqp import Consumer

WRONG: list[Any] = [
    None, True, False, 0, -1, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308,
    "", "x", "x" * 5000, "\x00", "é\u2028", "12345", [], [1], [[[]]], {}, {"a": 1}, {"": None},
]  # fmt: skip
ONE_BY_ONE = EXAMPLES >= 1000
GONE = object()  # a position removed rather than replaced


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def mutant(template: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(template)
    if value is GONE:
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    else:
        _set(event, path, value)
    return event


def mutants() -> Iterator[tuple[int, Any, list[dict[str, Any]]]]:
    """(template index, value, every mutant of that template with that value)."""
    for index, template in enumerate(TEMPLATES):
        paths = _paths(template)
        for value in [*WRONG, GONE]:
            batch = []
            for path in paths:
                original: Any = template
                for step in path:
                    original = original[step]
                if value is GONE or not same(original, value):
                    batch.append(mutant(template, path, value))
            yield index, value, batch


def test_every_field_path_gets_every_wrong_kind() -> None:
    """The enumeration covers every position of every template with every wrong value."""
    cases = list(mutants())
    assert len(cases) == len(TEMPLATES) * (len(WRONG) + 1)
    assert sum(len(batch) for _, _, batch in cases) > 10 * sum(len(_paths(t)) for t in TEMPLATES)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as running:
        yield running


@pytest.mark.parametrize("transport", ["http", "ws", "amqp"])
def test_wrong_types_at_every_field_path(served: Served, transport: str) -> None:
    """Each mutant is answered and counted exactly as the decoder judges it (accepted and
    committed, or rejected invalid_event), whichever way it arrives; no 5xx, no error logged."""
    consumer = Consumer(served) if transport == "amqp" else None

    def send(items: list[Any]) -> None:
        body = json.dumps(items, ensure_ascii=False).encode()  # orjson stops at 64 bits
        expect = expect_body(body)
        if consumer is not None:
            consumer.send(body, expect)
            return
        before = served.snapshot()
        reply = served.post(body) if transport == "http" else served.ws_send(body.decode())
        served.check(reply, before, expect, transport)

    sent = 0
    for index, _, batch in mutants():
        send(batch)
        sent += len(batch)
        if ONE_BY_ONE:
            for event in batch:
                send([event, TEMPLATES[index]])
    assert sent > 10_000
    if consumer is not None:
        served.run(consumer.amqp.settler.close())
    served.still_serves()
