"""The AMQP receiver's delivery and hand-back logic on fake queues and messages (the broker
e2e tests run it on RabbitMQ): acks after the state, requeues during a hand-back, and a
hand-back cut short by a lost connection."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from monitor.fleet import topology
from monitor.fleet.ownership import Ownership
from monitor.ingest.amqp import AmqpReceiver
from monitor.ingest.pipeline import Pipeline
from monitor.state import State
from monitor.telemetry import Telemetry
from tests.conftest import bodies, make_config
from tests.fakes import FakeAmqpMessage, FakeAmqpQueue

CONFIG = make_config("amqp: {url: 'amqp://127.0.0.1', shards: 2}\ntargets: [{name: janus-lab-1}]")


async def receiver(
    cancel_fails: bool = False,
) -> tuple[AmqpReceiver, list[FakeAmqpQueue], list[str]]:
    assert CONFIG.amqp is not None
    ownership = Ownership("me", 2, 1.0, 0.0)
    ownership.connected_now(0.0)
    scopes: list[str] = []
    state = State()
    amqp = AmqpReceiver(CONFIG.amqp, Pipeline(state, Telemetry()), ownership,
                        on_scope=lambda: scopes.append("scope"), targets=lambda: ("janus-lab-1",),
                        max_body_bytes=1 << 20, monotonic=lambda: 10.0)  # fmt: skip
    queues = [FakeAmqpQueue(cancel_fails) for _ in range(2)]
    amqp.queues = cast(list[Any], queues)
    for index in range(2):
        await amqp._subscribe(index)
    return amqp, queues, scopes


async def deliver(queue: FakeAmqpQueue, tag: str, message: FakeAmqpMessage) -> None:
    await queue.consumers[tag](message)
    for _ in range(3):  # the batched ack goes out after this loop turn
        await asyncio.sleep(0)


async def test_events_are_applied_then_acked_and_own_the_emitter() -> None:
    """A body of Janus events: applied to state, acked, and its emitter owned."""
    amqp, queues, scopes = await receiver()
    message = FakeAmqpMessage(bodies("10-media")[0], routing_key="janus-lab-1")
    await deliver(queues[0], "ctag-0", message)
    assert message.settled == ["ack through"]
    assert amqp.ownership.owned_emitters() == {"janus-lab-1"}
    assert amqp.ownership.counters.messages["applied"] == 1
    assert scopes  # the scope was told before the events applied
    assert "janus-lab-1" in amqp.pipeline.state.servers


async def test_one_ack_covers_the_messages_applied_in_one_loop_turn() -> None:
    """Messages delivered together are acked once, through the last of them."""
    amqp, queues, _ = await receiver()
    messages = [FakeAmqpMessage(body, routing_key="janus-lab-1") for body in bodies("10-media")[:3]]
    for message in messages:
        await queues[0].consumers["ctag-0"](message)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [m.settled for m in messages] == [[], [], ["ack through"]]
    assert amqp.ownership.counters.messages["applied"] == 3


async def test_a_probe_owns_the_shard_and_is_acked() -> None:
    """A probe for a target maps the target to the shard it arrived on."""
    amqp, queues, _ = await receiver()
    probe = FakeAmqpMessage(topology.probe_body("other", "janus-lab-1"), topology.PROBE_TYPE)
    await deliver(queues[1], "ctag-0", probe)
    assert probe.settled == ["ack"]
    assert amqp.ownership.owned_shards() == [1]
    assert amqp.ownership.emitter_shard == {"janus-lab-1": 1}


async def test_a_hand_back_sends_the_old_consumers_deliveries_back() -> None:
    """After a hand-back the cancelled consumer's late deliveries are requeued, the new
    consumer's are taken."""
    amqp, queues, _ = await receiver()
    await deliver(
        queues[0], "ctag-0", FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    )
    late = queues[0].consumers["ctag-0"]
    await amqp._hand_back(0)
    assert queues[0].cancelled == ["ctag-0"] and amqp.ownership.owned_shards() == []
    stale = FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    await late(stale)
    assert stale.settled == ["requeue"]
    fresh = FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    await deliver(queues[0], "ctag-1", fresh)
    assert fresh.settled == ["ack"] and amqp.ownership.owned_shards() == [0]


async def test_a_hand_back_cut_short_keeps_the_consumer() -> None:
    """When the cancel fails (the connection dropped), the consumer the robust connection
    will restore still has its deliveries taken, never requeued in a loop."""
    amqp, queues, _ = await receiver(cancel_fails=True)
    callback = queues[0].consumers["ctag-0"]
    with pytest.raises(ConnectionError):
        await amqp._hand_back(0)
    message = FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    await callback(message)
    assert message.settled == ["ack"]
    assert amqp.consumer_tags[0] == "ctag-0"


async def test_an_oversized_message_is_rejected_and_acked() -> None:
    """A message over the body limit is counted as rejected and acked (it would fail again)."""
    amqp, queues, _ = await receiver()
    amqp.max_body_bytes = 10
    message = FakeAmqpMessage(bodies("10-media")[0])
    await deliver(queues[0], "ctag-0", message)
    assert message.settled == ["ack"]
    assert amqp.ownership.counters.messages == {"applied": 0, "rejected": 1}
    assert amqp.pipeline.telemetry.events_rejected.get("too_large") == 1
