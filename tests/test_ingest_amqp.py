"""The AMQP receiver's delivery and hand-back logic on fake queues and messages (the broker
e2e tests run it on RabbitMQ): acks after the state, requeues during a hand-back, and a
hand-back cut short by a lost connection."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from lab.janus import free_port
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


async def settled() -> None:
    for _ in range(5):  # the settler task sends what was decided
        await asyncio.sleep(0)


async def deliver(queue: FakeAmqpQueue, tag: str, message: FakeAmqpMessage) -> None:
    await queue.consumers[tag](message)
    await settled()


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
    await settled()
    assert [m.settled for m in messages] == [[], [], ["ack through"]]
    assert amqp.ownership.counters.messages["applied"] == 3


async def test_a_probe_owns_the_shard_and_is_acked() -> None:
    """A probe for a target maps the target to the shard it arrived on."""
    amqp, queues, _ = await receiver()
    probe = FakeAmqpMessage(topology.probe_body("other", "janus-lab-1"), topology.PROBE_TYPE)
    await deliver(queues[1], "ctag-0", probe)
    assert probe.settled == ["ack through"]
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
    await settled()
    assert stale.settled == ["requeue"]
    fresh = FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    await deliver(queues[0], "ctag-1", fresh)
    assert fresh.settled == ["ack through"] and amqp.ownership.owned_shards() == [0]


async def test_a_hand_back_cut_short_subscribes_again() -> None:
    """When the cancel fails (the connection dropped), aio-pika has already forgotten the
    consumer: the shard is marked unsubscribed and the next probe round subscribes afresh."""
    amqp, _, _ = await receiver(cancel_fails=True)
    with pytest.raises(ConnectionError):
        await amqp._hand_back(0)
    assert amqp.consumer_tags[0] is None and not amqp.ownership.ready
    await amqp._subscribe(0)  # what the probe round does for a shard without a consumer
    assert amqp.consumer_tags[0] == "ctag-1" and amqp.ownership.ready


async def test_nacks_and_acks_go_out_in_the_order_decided() -> None:
    """A requeue decided between two acks is sent between them: the multiple ack of the
    later one never overtakes it."""
    amqp, queues, _ = await receiver()
    await deliver(
        queues[0], "ctag-0", FakeAmqpMessage(topology.probe_body("x"), topology.PROBE_TYPE)
    )
    late = queues[0].consumers["ctag-0"]
    sent: list[str] = []

    class Recording(FakeAmqpMessage):
        async def ack(self, multiple: bool = False) -> None:
            sent.append(f"ack {self.routing_key}")

        async def nack(self, requeue: bool = True) -> None:
            sent.append(f"nack {self.routing_key}")

    await amqp._hand_back(0)
    first = Recording(topology.probe_body("x"), topology.PROBE_TYPE, routing_key="1")
    stale = Recording(topology.probe_body("x"), topology.PROBE_TYPE, routing_key="2")
    last = Recording(topology.probe_body("x"), topology.PROBE_TYPE, routing_key="3")
    await queues[1].consumers["ctag-0"](first)
    await late(stale)
    await queues[1].consumers["ctag-0"](last)
    await settled()
    assert sent == ["ack 1", "nack 2", "ack 3"]


async def test_a_failing_handler_still_settles_its_message() -> None:
    """A bug in handling a delivery drops that message (counted), never leaves it unsettled."""
    amqp, queues, _ = await receiver()

    def broken(*_: Any) -> None:
        raise RuntimeError("bug")

    amqp.pipeline.ingest_body = broken  # type: ignore[method-assign]
    message = FakeAmqpMessage(bodies("10-media")[0])
    await deliver(queues[0], "ctag-0", message)
    assert message.settled == ["drop"]
    assert amqp.ownership.counters.messages["rejected"] == 1


async def test_an_oversized_message_is_rejected_and_acked() -> None:
    """A message over the body limit is counted as rejected and acked (it would fail again)."""
    amqp, queues, _ = await receiver()
    amqp.max_body_bytes = 10
    message = FakeAmqpMessage(bodies("10-media")[0])
    await deliver(queues[0], "ctag-0", message)
    assert message.settled == ["ack through"]
    assert amqp.ownership.counters.messages == {"applied": 0, "rejected": 1}
    assert amqp.pipeline.telemetry.events_rejected.get("too_large") == 1


async def test_closing_while_the_broker_is_away_leaves_no_task_behind() -> None:
    """Closed mid-connect (the broker's port refuses), the receiver ends the robust
    connection too: no reconnect task outlives it to swallow the loop's final cancel."""
    port = free_port()  # nothing listens: every attempt is refused, and retried
    config = make_config(
        f"amqp: {{url: 'amqp://127.0.0.1:{port}', shards: 2}}\ntargets: [{{name: janus-lab-1}}]"
    )
    assert config.amqp is not None
    before = asyncio.all_tasks()
    amqp = AmqpReceiver(config.amqp, Pipeline(State(), Telemetry()), Ownership("me", 2, 1.0, 0.0),
                        on_scope=lambda: None, targets=lambda: ("janus-lab-1",),
                        max_body_bytes=1 << 20, monotonic=lambda: 10.0)  # fmt: skip
    amqp.start()
    await asyncio.sleep(0.3)  # a refused attempt or two, the factory now between retries
    await asyncio.wait_for(amqp.close(), 5.0)
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], f"tasks still running after close: {left}"


class SwallowingConnection:
    """A connection whose channel() turns a cancel into another exception, as some aiormq
    calls do when the stop comes mid-request."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def channel(self) -> None:
        if self.asked.is_set():  # once: then a cancel works, and the test's loop can close
            await asyncio.sleep(60)
        self.asked.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("channel closed") from None


async def test_a_swallowed_cancel_does_not_hang_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped while its backlog reading is mid-request and the library swallows the cancel,
    the receiver still stops promptly and leaves its loop task done."""
    monkeypatch.setattr("monitor.ingest.amqp.BACKLOG_EVERY", 0.0)
    amqp, _, _ = await receiver()
    connection = SwallowingConnection()
    amqp.connection = cast(Any, connection)
    task = asyncio.create_task(amqp._backlog_loop(), name="amqp-backlog")
    amqp.tasks.append(task)
    await asyncio.wait_for(connection.asked.wait(), 2.0)
    closing = asyncio.create_task(amqp.close())
    await asyncio.wait({closing}, timeout=3.0)  # not wait_for: its cancel would hang as well
    assert closing.done(), "close() still waits for the backlog loop"
    assert task.done()
