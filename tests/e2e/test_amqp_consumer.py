"""The AMQP consumer on a real RabbitMQ 3.10: topology, the decode -> state path, acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from lab.netns import LabNetns
from lab.rabbitmq import RabbitBroker, require_rabbitmq
from lab.tls import make_server_cert
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
    unavailable,
)
from tests.e2e.fleet import amqp_config, publish_as_janus

pytestmark = pytest.mark.e2e


@pytest.fixture
async def fleet_daemon(rabbit: RabbitBroker, amqp_exchange: str) -> AsyncIterator[Daemon]:
    config = make_config(amqp_config(rabbit, amqp_exchange, targets="{name: janus-lab-1}"))
    async for running in run_daemon(config):
        yield running


running_daemon = asynccontextmanager(run_daemon)


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

    async def drained() -> bool:  # "messages" counts the unacked: acks follow the apply
        depths = await asyncio.to_thread(rabbit.queue_depths)
        return all(depths[topology.shard_queue(amqp_exchange, i)] == 0 for i in range(4))

    assert await until(drained)


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


async def test_the_webhook_keeps_working_beside_the_broker(fleet_daemon: Daemon) -> None:
    """With amqp set, a sampleevh POST is still answered and applied."""
    body = bodies("10-media")[0]
    status, answer, _ = await fleet_daemon.post_events(body)
    assert status == 200 and answer["rejected"] == 0 and answer["accepted"] > 0

    async def applied() -> bool:
        return sum(received(await fleet_daemon.metrics(), "janus-lab-1").values()) > 0

    assert await until(applied)


@pytest.fixture
def tls_broker(lab_netns: LabNetns, tmp_path: Path) -> Iterator[RabbitBroker]:
    """A broker of its own with an amqps listener (a throwaway CA signs its certificate)."""
    try:
        require_rabbitmq()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    broker = RabbitBroker(tmp_path / "broker", tls=make_server_cert(tmp_path / "certs"))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def tls_config(broker: RabbitBroker, tls: str) -> str:
    return (
        f"amqp: {{url: '{broker.url(tls=True)}', exchange: jm-tls, shards: 2, "
        f"probe_interval: 200ms, tls: {tls}}}\ntargets: [{{name: janus-lab-1}}]\n"
    )


async def test_amqps_with_the_ca_verifies_the_broker_and_consumes(tls_broker: RabbitBroker) -> None:
    """amqps:// with tls.ca_file connects (the broker's certificate checks out), consumes,
    and reads the shard queues' depth."""
    assert tls_broker.tls is not None
    config = make_config(tls_config(tls_broker, f"{{ca_file: '{tls_broker.tls.ca_file}'}}"))
    async with running_daemon(config) as daemon:

        async def connected() -> bool:
            return sample(await daemon.metrics(), "janus_monitor_amqp_connected") == 1.0

        assert await until(connected)
        await publish_as_janus(tls_broker, "jm-tls", "janus-lab-1", bodies("10-media")[:3])

        async def applied_and_measured() -> bool:
            samples = await daemon.metrics()
            return (
                sample(samples, "janus_monitor_amqp_messages_total", outcome="applied") == 3.0
                and sample(samples, "janus_monitor_amqp_shard_backlog_messages", shard="1") == 0.0
            )

        assert await until(applied_and_measured, within=15.0)


async def test_amqps_without_the_ca_refuses_the_broker(tls_broker: RabbitBroker) -> None:
    """verify_peer with no CA that signed the broker: no connection, and the daemon serves."""
    config = make_config(tls_config(tls_broker, "{verify_peer: true}"))
    async with running_daemon(config) as daemon:
        await asyncio.sleep(3.0)
        samples = await daemon.metrics()
        assert sample(samples, "janus_monitor_amqp_connected") == 0.0
        assert sample(samples, "janus_monitor_shard_owned", shard="0") == 0.0


async def test_a_refused_declare_is_retried_until_the_broker_allows_it(
    rabbit: RabbitBroker, amqp_exchange: str
) -> None:
    """An exchange someone declared durable makes the daemon's declare fail: it stays
    disconnected and serving, then connects once the exchange is gone."""
    connection = await aio_pika.connect(rabbit.url())
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(amqp_exchange, topology.EXCHANGE_TYPE, durable=True)
        config = make_config(amqp_config(rabbit, amqp_exchange, targets="{name: janus-lab-1}"))
        async with running_daemon(config) as daemon:
            await asyncio.sleep(2.0)
            samples = await daemon.metrics()
            assert sample(samples, "janus_monitor_amqp_connected") == 0.0
            channel = await connection.channel()
            await channel.exchange_delete(amqp_exchange)

            async def connected() -> bool:
                return sample(await daemon.metrics(), "janus_monitor_amqp_connected") == 1.0

            assert await until(connected, within=25.0)
