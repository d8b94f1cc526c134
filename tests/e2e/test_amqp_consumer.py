"""The AMQP consumer on a real RabbitMQ 3.10: topology, the decode -> state path, acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lab.rabbitmq import RabbitBroker
from monitor.fleet import topology
from tests.conftest import (
    Daemon,
    bodies,
    body_paths,
    eventually,
    items_of,
    make_config,
    received,
    run_daemon,
    sample,
)
from tests.e2e.fleet import amqp_config, publish_as_janus

pytestmark = pytest.mark.e2e


@pytest.fixture
async def fleet_daemon(rabbit: RabbitBroker, amqp_exchange: str) -> AsyncIterator[Daemon]:
    config = make_config(amqp_config(rabbit, amqp_exchange, targets="{name: janus-lab-1}"))
    async for running in run_daemon(config):
        yield running


async def until(check: Any, within: float = 10.0) -> bool:
    return await eventually(check, within)


async def test_events_through_the_broker_reach_state(
    fleet_daemon: Daemon, rabbit: RabbitBroker, amqp_exchange: str
) -> None:
    """Janus's bodies published to the consistent-hash exchange are applied and acked."""
    payloads = bodies("10-media")

    async def owned() -> bool:
        samples = await fleet_daemon.metrics()
        return sample(samples, "janus_monitor_amqp_connected") == 1.0

    assert await until(owned)
    await publish_as_janus(rabbit, amqp_exchange, "janus-lab-1", payloads)

    async def applied() -> bool:
        samples = await fleet_daemon.metrics()
        return sample(samples, "janus_monitor_amqp_messages_total", outcome="applied") == len(
            payloads
        )

    assert await until(applied)
    samples = await fleet_daemon.metrics()
    assert sample(samples, "janus_monitor_emitter_owned", server="janus-lab-1") == 1.0
    owned_shards = [sample(samples, "janus_monitor_shard_owned", shard=str(i)) for i in range(4)]
    assert owned_shards == [1.0] * 4  # alone, it owns every shard
    items = sum(len(items_of(path)) for path in body_paths("10-media"))
    assert sum(received(samples, "janus-lab-1").values()) == items
    depths = rabbit.queue_depths()
    assert all(depths[topology.shard_queue(amqp_exchange, i)] == 0 for i in range(4))


async def test_an_undecodable_message_is_counted_and_acked(
    fleet_daemon: Daemon, rabbit: RabbitBroker, amqp_exchange: str
) -> None:
    """A message that is not JSON is rejected once and acked, never redelivered in a loop."""

    async def connected() -> bool:
        return sample(await fleet_daemon.metrics(), "janus_monitor_amqp_connected") == 1.0

    assert await until(connected)
    await publish_as_janus(rabbit, amqp_exchange, "janus-lab-1", [b"{not json", b"[]"])

    async def rejected() -> bool:
        samples = await fleet_daemon.metrics()
        return sample(samples, "janus_monitor_amqp_messages_total", outcome="rejected") == 1.0

    assert await until(rejected)
    await asyncio.sleep(1.0)
    samples = await fleet_daemon.metrics()
    assert sample(samples, "janus_monitor_amqp_messages_total", outcome="rejected") == 1.0
    assert sample(samples, "janus_monitor_amqp_requeued_total") == 0.0
    assert all(v == 0 for k, v in rabbit.queue_depths().items() if k.startswith(amqp_exchange))
