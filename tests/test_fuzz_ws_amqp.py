"""Fuzzing the WebSocket endpoint (wsevh frames) of a real daemon and the AMQP consumer's
message handler (fake messages, no broker): the same bodies as the webhook, frames that are
not UTF-8 or too big, and probes and heartbeats of any bytes."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from hypothesis import strategies as st

from monitor.fleet import topology
from monitor.ingest.amqp import AmqpReceiver
from tests.fakes import FakeAmqpMessage
from tests.fuzz_strategies import NOT_UTF8, any_body, template_bytes
from tests.fuzzing import (
    SERVER,
    STATUS_REASONS,
    Expect,
    Served,
    check_items,
    expect_body,
    fuzz,
    serving,
)
from tests.test_ingest_amqp import deliver, receiver


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as running:
        yield running


class Consumer:
    """The AMQP receiver of tests/test_ingest_amqp.py on fake shard queues, run on the
    daemon's loop: each message is delivered, settled, and its counters checked."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.amqp: AmqpReceiver
        self.amqp, self.queues, _ = served.run(receiver())

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], int, int]:
        telemetry, counters = self.amqp.pipeline.telemetry, self.amqp.ownership.counters
        received = sum(n for (name, _), n in telemetry.events_received.items() if name == SERVER)
        return dict(telemetry.events_rejected), dict(counters.messages), received, counters.probes

    def send(self, body: bytes, expect: Expect, kind: str | None = None) -> None:
        """Acked exactly once; a body refused is counted rejected under one allowed reason, a
        batch is applied with its items counted as over HTTP; a probe is counted a probe."""
        old_rejected, old_messages, old_received, old_probes = self.snapshot()
        message = FakeAmqpMessage(body, kind, routing_key=SERVER)
        self.served.run(deliver(self.queues[0], "ctag-0", message))
        assert message.settled == ["ack through"]
        rejected, messages, received, probes = self.snapshot()
        delta = {r: n - old_rejected[r] for r, n in rejected.items() if n != old_rejected[r]}
        moved = {m: n - old_messages[m] for m, n in messages.items() if n != old_messages[m]}
        if kind == topology.PROBE_TYPE:
            assert (probes - old_probes, moved, delta) == (1, {}, {})
        elif moved == {"rejected": 1}:
            (reason,) = delta
            assert delta[reason] == 1 and reason in expect.reasons, (delta, expect)
            assert reason in set().union(*STATUS_REASONS.values())
        else:
            assert moved == {"applied": 1}, moved
            assert expect.items is not None, (delta, "expected a refusal")
            # no answer goes back over AMQP: the counts must add up without one
            answer = {"accepted": len(expect.items) - sum(delta.values()),
                      "rejected": sum(delta.values())}  # fmt: skip
            check_items(answer, delta, received - old_received, expect.items, answered=False)


@pytest.fixture(scope="module")
def consumer(served: Served) -> Iterator[Consumer]:
    running = Consumer(served)
    yield running
    served.run(running.amqp.settler.close())


def test_websocket_frames(served: Served) -> None:
    """Any body as a text frame (or a binary one): answered on the socket like the webhook
    answers it, counted the same way; a text frame that is not UTF-8 closes with 1007."""

    def case(body: bytes, binary: bool) -> None:
        before = served.snapshot()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text = None
        if binary:
            reply = served.ws_send(body)
        elif text is None:  # sent as a text frame anyway: the protocol forbids it
            reply = served.ws_send(body, aiohttp.WSMsgType.TEXT)
            assert reply is not None and reply.body is None and reply.status == 400
        else:
            reply = served.ws_send(text)
        served.check(reply, before, expect_body(body), "ws")

    fuzz(case, any_body, st.booleans())
    served.still_serves()


def test_websocket_frame_over_the_limit_closes_the_socket(served: Served) -> None:
    """A frame over webhook.max_body_bytes is refused by closing the socket (1009), counted
    too_large and a ws 413; the next socket works."""
    limit = served.daemon.runtime.config.webhook.max_body_bytes
    before = served.snapshot()
    reply = served.ws_send(b"[" + b"0," * (limit // 2) + b"0]")
    served.check(reply, before, Expect(reasons=frozenset({"too_large"})), "ws")
    assert reply is not None and reply.body is None  # the daemon closed the socket
    before = served.snapshot()
    body = template_bytes()[0]
    served.check(served.ws_send(body.decode()), before, expect_body(body), "ws")


def test_amqp_messages(consumer: Consumer, served: Served) -> None:
    """Any body as an event message: acked once, applied with every item counted, or
    rejected under a body reason; never an internal_error."""

    def case(body: bytes) -> None:
        consumer.send(body, expect_body(body))

    fuzz(case, any_body)
    assert consumer.amqp.pipeline.telemetry.events_rejected["internal_error"] == 0
    served.still_serves()


def test_amqp_probes_and_not_utf8(consumer: Consumer, served: Served) -> None:
    """Probe messages of any bytes are acked and counted as probes; event bodies with bytes
    that are not UTF-8 are rejected malformed_json and acked."""

    def case(body: bytes, bad: bytes) -> None:
        consumer.send(body, Expect(), topology.PROBE_TYPE)
        poisoned = template_bytes()[0].replace(b'"', b'"' + bad, 1)
        consumer.send(poisoned, Expect(reasons=frozenset({"malformed_json"})))

    fuzz(case, st.binary(max_size=200), st.sampled_from(NOT_UTF8), weight=0.2)
    served.still_serves()
