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

from monitor.config import AmqpConfig
from monitor.fleet import topology
from monitor.fleet.ownership import Ownership
from monitor.ingest.amqp_wire import Settler, connection_url, heartbeat, probe, tls_context
from monitor.ingest.body import BodyError
from monitor.ingest.pipeline import BatchResult, Pipeline
from monitor.tasks import cancelling, stop_tasks

log = structlog.get_logger("monitor.amqp")

BACKLOG_EVERY = 5.0  # seconds between readings of the shard queues' depth
RECONNECT_INTERVAL = 1.0
CONNECT_TIMEOUT = 15.0  # seconds for one attempt, TLS handshake included; then it retries
CLOSE_TIMEOUT = 5.0
SETUP_RETRY = 10.0  # seconds between attempts to declare the topology after a refusal
MAX_ROUTE_KEY_WARNINGS = 1000  # emitters checked; the state bounds them anyway


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
        self.settler = Settler()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._run(), name="amqp"))

    async def close(self) -> None:
        await stop_tasks(self.tasks, CLOSE_TIMEOUT)
        await self.settler.close()
        await self._close_connection()
        self.ownership.disconnected_now(self.monotonic())
        self._scope_changed()

    async def _run(self) -> None:
        while True:  # a bad TLS file or URL is logged and tried again, not a silent stop
            try:
                # Held before it connects: close() must end a connection still trying, or
                # its reconnect task lives on and swallows the loop's final cancel.
                self.connection = aio_pika.RobustConnection(
                    connection_url(self.config),
                    ssl_context=tls_context(self.config),
                    client_properties={"connection_name": f"janus-monitor {self.ownership.member}"},
                    reconnect_interval=RECONNECT_INTERVAL,
                    fail_fast=False,
                )
                await self.connection.connect(timeout=CONNECT_TIMEOUT)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                log.error("amqp_connect_failed", error=f"{exc.__class__.__name__}: {exc}",
                          retry_in_seconds=SETUP_RETRY)  # fmt: skip
                await self._close_connection()
                await asyncio.sleep(SETUP_RETRY)
        self.connection.close_callbacks.add(self._lost)
        self.connection.reconnect_callbacks.add(self._back)
        while True:
            try:
                await self._declare(self.connection)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a queue or exchange someone declared otherwise
                if cancelling():
                    raise asyncio.CancelledError from exc
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

    async def _close_connection(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            # Bounded: a broker that stopped answering must not hold up the daemon's stop.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)

    async def _discard_channel(self) -> None:
        self.queues.clear()
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        channel = self.channel = await connection.channel()
        assert self.channel is not None
        # A channel closed alone (a channel error, a broker-side cancel) ends every consumer
        # on it, like a lost connection; the robust channel reopens and restores them.
        channel.close_callbacks.add(self._lost)
        channel.reopen_callbacks.add(self._back)
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

        self.ownership.subscribed(index)  # first: a delivery may beat the ConsumeOk here
        try:
            self.consumer_tags[index] = await self.queues[index].consume(deliver)
        except BaseException:
            self.consumer_tags[index] = None  # the next probe round subscribes again
            self.ownership.cancelled(index)
            raise

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
        """Settle every delivery exactly once, through the settler, before any await."""
        try:
            self._handle(index, generation, message)
        except Exception:  # a bug must not leave a message unsettled (it would hold a slot)
            log.exception("amqp_message_failed", shard=index, routing_key=message.routing_key)
            self.ownership.counters.messages["rejected"] += 1
            self.pipeline.telemetry.reject("internal_error")
            self.settler.drop(message)

    def _handle(self, index: int, generation: int, message: AbstractIncomingMessage) -> None:
        now = self.monotonic()
        settle = self.settler
        if generation != self.generations[index]:  # a consumer cancelled by a hand-back
            self.ownership.counters.requeued += 1
            settle.requeue(message)
            return
        if message.type == topology.PROBE_TYPE:
            parsed = topology.parse_probe(message.body)
            emitters = {parsed.target} if parsed is not None and parsed.target else set()
            self.ownership.counters.probes += 1
            accepted = self.ownership.delivered(index, emitters, now, probe=True)
            (settle.ack if accepted else settle.requeue)(message)
            self._scope_changed()
            return
        try:
            result = self._ingest(message.body)
        except BodyError as exc:  # it would fail forever: count it and let it go
            self.ownership.counters.messages["rejected"] += 1
            self.pipeline.telemetry.reject(exc.reason)
            log.warning("amqp_message_rejected", shard=index, reason=exc.reason,
                        error=exc.message, routing_key=message.routing_key)  # fmt: skip
            settle.ack(message)
            return
        self._check_route_key(message.routing_key, result.emitters)
        if not self.ownership.delivered(index, result.emitters, now):
            settle.requeue(message)
            return
        self._scope_changed()  # a newly owned emitter is configured before its events apply
        self.pipeline.commit(result)
        self.ownership.counters.messages["applied"] += 1
        settle.ack(message)

    def _check_route_key(self, route_key: str | None, emitters: set[str]) -> None:
        """Once per emitter: a route_key that is not the server_name puts Janus servers that
        share it on one shard, and its probes (sent under the name) on another."""
        for emitter in emitters - self._route_keys_checked:
            if len(self._route_keys_checked) < MAX_ROUTE_KEY_WARNINGS:
                self._route_keys_checked.add(emitter)
                if route_key != emitter:
                    log.warning("amqp_route_key_mismatch", server=emitter, route_key=route_key)

    def _ingest(self, body: bytes) -> BatchResult:
        if len(body) > self.max_body_bytes:
            raise BodyError(
                413, "too_large", f"message is over webhook.max_body_bytes ({self.max_body_bytes})"
            )
        return self.pipeline.ingest_body(body)

    def _scope_changed(self) -> None:
        owned = self.ownership.owned_emitters()
        if owned != self._owned:
            gained, lost = sorted(owned - self._owned), sorted(self._owned - owned)
            self._owned = owned
            log.info("amqp_ownership_changed", gained=gained or None, lost=lost or None,
                     shards=self.ownership.owned_shards())  # fmt: skip
            try:
                self.on_scope()
            except Exception:  # the deliveries go on; the next change tries again
                log.exception("scope_apply_failed")

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
                if cancelling():
                    raise asyncio.CancelledError from exc
                level = log.warning if self.ownership.connected else log.debug
                level("amqp_probe_failed", error=f"{exc.__class__.__name__}: {exc}")
            await asyncio.sleep(self.config.probe_interval)

    async def _probe_once(self) -> None:
        if self.channel is None or self.exchange is None or self.members is None:
            return
        if not self.ownership.connected:
            return
        me = self.ownership.member
        default = self.channel.default_exchange
        if self.ownership.expire(self.monotonic()):  # delivery moved without telling us
            self._scope_changed()
        for index in range(self.config.shards):
            queue = topology.shard_queue(self.config.exchange, index)
            await default.publish(probe(me), routing_key=queue)
        for target in self.targets():
            await self.exchange.publish(probe(me, target), routing_key=target)
        ready, owned = self.ownership.ready, self.ownership.owned_shards()
        await self.members.publish(heartbeat(me, ready, owned), routing_key="")
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
        tag = self.consumer_tags[index]
        self.generations[index] += 1  # deliveries of the old consumer are requeued from now
        self.consumer_tags[index] = None
        try:
            if tag is not None:
                # aio-pika forgets the consumer before the request goes out: if it fails,
                # nothing restores it, and the next probe round subscribes afresh.
                await self.queues[index].cancel(tag)
        except Exception:
            self.ownership.cancelled(index)
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
                if cancelling():
                    raise asyncio.CancelledError from exc
                log.debug("amqp_backlog_failed", error=str(exc))

    async def _read_backlog(self) -> None:
        """Passive declares on a channel of their own: a missing queue (404) closes only it."""
        if self.connection is None or not self.ownership.connected:
            return
        channel = await self.connection.channel()
        try:
            underlay = await channel.get_underlay_channel()
            for index in range(self.config.shards):
                declared = await underlay.queue_declare(
                    topology.shard_queue(self.config.exchange, index), passive=True
                )
                self.ownership.backlog[index] = int(declared.message_count or 0)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
