"""Janus rabbitmqevh events from RabbitMQ: one quorum shard queue per consistent-hash
binding, single-active-consumer, each message applied through the same pipeline as a webhook
body and acked after the state has it (SPEC "amqp").

What this daemon owns is learned from deliveries (``monitor.fleet.ownership``); this module
does the I/O: connection (robust: it restores exchanges, queues, bindings and consumers after
a broker restart), probes, heartbeats, hand-backs and the backlog readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from yarl import URL

from monitor.config import AmqpConfig
from monitor.fleet import topology
from monitor.fleet.ownership import Ownership
from monitor.ingest.body import BodyError, parse_items
from monitor.ingest.pipeline import Pipeline

log = structlog.get_logger("monitor.amqp")

BACKLOG_EVERY = 5.0  # seconds between readings of the shard queues' depth
RECONNECT_INTERVAL = 1.0
SETUP_RETRY = 10.0  # seconds between attempts to declare the topology after a refusal
MAX_ROUTE_KEY_WARNINGS = 1000  # emitters checked; the state bounds them anyway
AMQP_HEARTBEAT = 10  # seconds; the broker takes a silent daemon for dead after 2-3 of them


def connection_url(config: AmqpConfig) -> URL:
    url = URL(config.url.reveal())
    if "heartbeat" not in url.query:
        url = url.update_query(heartbeat=str(AMQP_HEARTBEAT))
    return url


def tls_context(config: AmqpConfig) -> ssl.SSLContext | None:
    if not config.url.reveal().lower().startswith("amqps://"):
        return None
    tls = config.tls
    context = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify_peer:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


class AmqpReceiver:
    """Consumes every shard (active or standby) and keeps ``ownership`` up to date;
    ``on_scope`` is called whenever the set of owned emitters may have changed."""

    def __init__(
        self,
        config: AmqpConfig,
        pipeline: Pipeline,
        ownership: Ownership,
        on_scope: Callable[[], None],
        targets: Callable[[], tuple[str, ...]],
        max_body_bytes: int,
        on_connected: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.ownership = ownership
        self.on_scope = on_scope
        self.targets = targets
        self.max_body_bytes = max_body_bytes
        self.on_connected = on_connected
        self.monotonic = monotonic
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractRobustChannel | None = None
        self.exchange: AbstractRobustExchange | None = None
        self.members: AbstractRobustExchange | None = None
        self.queues: list[AbstractQueue] = []
        self.consumer_tags: list[str | None] = [None] * config.shards
        self.generations = [0] * config.shards
        self.tasks: list[asyncio.Task[None]] = []
        self._owned: frozenset[str] = frozenset()
        self._route_keys_checked: set[str] = set()
        self._ack_latest: AbstractIncomingMessage | None = None
        self._ack_scheduled = False
        self._acking: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._run(), name="amqp"))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
        self.ownership.disconnected_now(self.monotonic())
        self._scope_changed()

    async def _run(self) -> None:
        self.connection = await aio_pika.connect_robust(
            connection_url(self.config),
            ssl_context=tls_context(self.config),
            client_properties={"connection_name": f"janus-monitor {self.ownership.member}"},
            reconnect_interval=RECONNECT_INTERVAL,
            fail_fast=False,
        )
        self.connection.close_callbacks.add(self._lost)
        self.connection.reconnect_callbacks.add(self._back)
        while True:
            try:
                await self._declare(self.connection)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a queue or exchange someone declared otherwise
                log.error("amqp_setup_failed", exchange=self.config.exchange,
                          error=f"{exc.__class__.__name__}: {exc}",
                          retry_in_seconds=SETUP_RETRY)  # fmt: skip
                await self._discard_channel()
                await asyncio.sleep(SETUP_RETRY)
        self.ownership.connected_now(self.monotonic())
        log.info("amqp_connected", shards=self.config.shards, exchange=self.config.exchange,
                 member=self.ownership.member)  # fmt: skip
        self.on_connected()
        self.tasks.append(asyncio.create_task(self._probe_loop(), name="amqp-probes"))
        self.tasks.append(asyncio.create_task(self._backlog_loop(), name="amqp-backlog"))

    async def _discard_channel(self) -> None:
        self.queues.clear()
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        channel = self.channel = await connection.channel()
        assert self.channel is not None
        await channel.set_qos(prefetch_count=self.config.prefetch)
        name = self.config.exchange
        self.exchange = await channel.declare_exchange(
            name,
            topology.EXCHANGE_TYPE,
            durable=topology.EXCHANGE_DURABLE,
            auto_delete=topology.EXCHANGE_AUTO_DELETE,
        )
        self.members = await channel.declare_exchange(
            topology.members_exchange(name), aio_pika.ExchangeType.FANOUT, durable=False
        )
        me = self.ownership.member
        member_queue = await channel.declare_queue(
            topology.member_queue(name, me), exclusive=True, auto_delete=True
        )
        await member_queue.bind(topology.members_exchange(name))
        await member_queue.consume(self._on_heartbeat, no_ack=True)
        for index in range(self.config.shards):
            queue = await channel.declare_queue(
                topology.shard_queue(name, index),
                durable=True,
                arguments=topology.SHARD_ARGUMENTS,
            )
            await queue.bind(name, routing_key=topology.BINDING_WEIGHT)
            self.queues.append(queue)
            await self._subscribe(index)

    async def _subscribe(self, index: int) -> None:
        self.generations[index] += 1
        generation = self.generations[index]

        async def deliver(message: AbstractIncomingMessage) -> None:
            await self._on_message(index, generation, message)

        self.consumer_tags[index] = await self.queues[index].consume(deliver)
        self.ownership.subscribed(index)

    def _lost(self, *_: Any) -> None:
        if self.ownership.connected:
            log.warning("amqp_disconnected", owned=sorted(self._owned))
        self.ownership.disconnected_now(self.monotonic())
        self._scope_changed()

    def _back(self, *_: Any) -> None:
        """The robust connection restored the channel, queues, bindings and consumers."""
        for shard in self.ownership.shards:
            if not shard.subscribed:  # a delivery since the restore already proved it
                self.ownership.subscribed(shard.index)
        now = self.monotonic()
        gap = self.ownership.disconnected_for(now)
        self.ownership.connected_now(now)
        log.info("amqp_reconnected", disconnected_seconds_total=round(gap, 3))

    # --- deliveries -------------------------------------------------------------------------

    async def _on_message(
        self, index: int, generation: int, message: AbstractIncomingMessage
    ) -> None:
        now = self.monotonic()
        if generation != self.generations[index]:  # a consumer cancelled by a hand-back
            self.ownership.counters.requeued += 1
            await message.nack(requeue=True)
            return
        if message.type == topology.PROBE_TYPE:
            probe = topology.parse_probe(message.body)
            emitters = {probe.target} if probe is not None and probe.target else set()
            self.ownership.counters.probes += 1
            accepted = self.ownership.delivered(index, emitters, now, probe=True)
            self._scope_changed()
            await (message.ack() if accepted else message.nack(requeue=True))
            return
        try:
            items = self._items(message.body)
        except BodyError as exc:  # it would fail forever: count it and let it go
            self.ownership.counters.messages["rejected"] += 1
            self.pipeline.telemetry.reject(exc.reason)
            log.warning("amqp_message_rejected", shard=index, reason=exc.reason,
                        error=exc.message, routing_key=message.routing_key)  # fmt: skip
            await message.ack()
            return
        result = self.pipeline.ingest(items)
        self._check_route_key(message.routing_key, result.emitters)
        if not self.ownership.delivered(index, result.emitters, now):
            await message.nack(requeue=True)
            return
        self._scope_changed()  # a newly owned emitter is configured before its events apply
        self.pipeline.commit(result)
        self.ownership.counters.messages["applied"] += 1
        self._ack_soon(message)

    def _ack_soon(self, message: AbstractIncomingMessage) -> None:
        """Ack after this loop turn, once for every message applied in it (``multiple``):
        deliveries are handled in order and each one's state is applied before the handler
        first waits, so every earlier delivery of the channel is settled by then."""
        self._ack_latest = message
        if not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_scheduled = False
        message, self._ack_latest = self._ack_latest, None
        if message is not None:
            task = asyncio.create_task(self._ack_through(message))
            self._acking.add(task)
            task.add_done_callback(self._acking.discard)

    async def _ack_through(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.ack(multiple=True)
        except Exception as exc:  # the connection went: the broker redelivers, nothing lost
            log.debug("amqp_ack_failed", error=str(exc))

    def _check_route_key(self, route_key: str | None, emitters: set[str]) -> None:
        """Once per emitter: a route_key that is not the server_name puts Janus servers that
        share it on one shard, and its probes (sent under the name) on another."""
        for emitter in emitters - self._route_keys_checked:
            if len(self._route_keys_checked) < MAX_ROUTE_KEY_WARNINGS:
                self._route_keys_checked.add(emitter)
                if route_key != emitter:
                    log.warning("amqp_route_key_mismatch", server=emitter, route_key=route_key)

    def _items(self, body: bytes) -> list[Any]:
        if len(body) > self.max_body_bytes:
            raise BodyError(
                413, "too_large", f"message is over webhook.max_body_bytes ({self.max_body_bytes})"
            )
        return parse_items(body)

    def _scope_changed(self) -> None:
        owned = self.ownership.owned_emitters()
        if owned != self._owned:
            gained, lost = sorted(owned - self._owned), sorted(self._owned - owned)
            self._owned = owned
            log.info("amqp_ownership_changed", gained=gained or None, lost=lost or None,
                     shards=self.ownership.owned_shards())  # fmt: skip
            self.on_scope()

    async def _on_heartbeat(self, message: AbstractIncomingMessage) -> None:
        beat = topology.parse_heartbeat(message.body)
        if beat is not None and beat.member != self.ownership.member:
            self.ownership.heard(beat.member, beat.ready, self.monotonic())

    # --- probes, heartbeats, hand-backs -----------------------------------------------------

    async def _probe_loop(self) -> None:
        while True:
            try:
                await self._probe_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: the robust connection comes back
                log.debug("amqp_probe_failed", error=str(exc))
            await asyncio.sleep(self.config.probe_interval)

    async def _probe_once(self) -> None:
        if self.channel is None or self.exchange is None or self.members is None:
            return
        if not self.ownership.connected:
            return
        me = self.ownership.member
        default = self.channel.default_exchange
        for index in range(self.config.shards):
            queue = topology.shard_queue(self.config.exchange, index)
            await default.publish(_probe(me), routing_key=queue)
        for target in self.targets():
            await self.exchange.publish(_probe(me, target), routing_key=target)
        ready, owned = self.ownership.ready, self.ownership.owned_shards()
        await self.members.publish(
            aio_pika.Message(
                topology.heartbeat_body(me, ready, owned), expiration=topology.PROBE_TTL_MS / 1000
            ),
            routing_key="",
        )
        for index in self.ownership.to_hand_back(self.monotonic()):
            await self._hand_back(index)
        for index, tag in enumerate(self.consumer_tags):
            if tag is None and index < len(self.queues):  # a hand-back cut short
                await self._subscribe(index)

    async def _hand_back(self, index: int) -> None:
        """Cancel, then consume again at the back of the line: the broker moves delivery to
        the next consumer; messages this consumer still holds go back to the queue."""
        preferred = self.ownership.preferred(index, self.monotonic())
        self.ownership.hand_back(index)
        self._scope_changed()
        log.info("amqp_shard_handed_back", shard=index, to=preferred)
        old, tag = self.generations[index], self.consumer_tags[index]
        self.generations[index] += 1  # deliveries of the old consumer are requeued from now
        self.consumer_tags[index] = None
        try:
            if tag is not None:
                await self.queues[index].cancel(tag)
        except Exception:
            # The consumer lives on (the robust connection will restore it): take its
            # deliveries again rather than send them back forever.
            self.generations[index], self.consumer_tags[index] = old, tag
            self.ownership.subscribed(index)
            raise
        await self._subscribe(index)  # if this fails, the next probe round subscribes again

    async def _backlog_loop(self) -> None:
        while True:
            await asyncio.sleep(BACKLOG_EVERY)
            try:
                await self._read_backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("amqp_backlog_failed", error=str(exc))

    async def _read_backlog(self) -> None:
        if self.channel is None or not self.ownership.connected:
            return
        underlay = await self.channel.get_underlay_channel()
        for index in range(self.config.shards):
            declared = await underlay.queue_declare(
                topology.shard_queue(self.config.exchange, index), passive=True
            )
            self.ownership.backlog[index] = int(declared.message_count or 0)


def _probe(member: str, target: str | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        topology.probe_body(member, target),
        type=topology.PROBE_TYPE,
        expiration=topology.PROBE_TTL_MS / 1000,
    )
