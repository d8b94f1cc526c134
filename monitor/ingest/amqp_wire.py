"""What the AMQP receiver needs beside its deliveries: the connection settings, the daemon's
own messages, and the one ordered path every ack and nack takes."""

from __future__ import annotations

import asyncio
import collections
import ssl

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage
from yarl import URL

from monitor.config import AmqpConfig
from monitor.fleet import topology
from monitor.tasks import stop_tasks

log = structlog.get_logger("monitor.amqp")

SETTLE_STOP_WITHIN = 5.0  # seconds for the settler to stop; acks not sent are redelivered
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


def probe(member: str, target: str | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        topology.probe_body(member, target),
        type=topology.PROBE_TYPE,
        expiration=topology.PROBE_TTL_MS / 1000,
    )


def heartbeat(member: str, ready: bool, owned: list[int]) -> aio_pika.Message:
    return aio_pika.Message(
        topology.heartbeat_body(member, ready, owned), expiration=topology.PROBE_TTL_MS / 1000
    )


class Settler:
    """Acks and nacks in the order they were decided, by one task.

    Deliveries are handled in delivery order, each settled before its handler first waits,
    so the queue here is in delivery-tag order. A run of acks goes out as one
    ``ack(multiple=True)`` through its last message (every earlier delivery of the channel
    is settled by then); a nack is sent on its own, after the acks before it. Sending each
    from its own task could reorder them in the connection's writer, and a multiple ack
    overtaking a nack would ack a message meant for another daemon.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[str, AbstractIncomingMessage]] = collections.deque()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.failures = 0

    def ack(self, message: AbstractIncomingMessage) -> None:
        self._put("ack", message)

    def requeue(self, message: AbstractIncomingMessage) -> None:
        self._put("requeue", message)

    def drop(self, message: AbstractIncomingMessage) -> None:
        self._put("drop", message)

    def _put(self, kind: str, message: AbstractIncomingMessage) -> None:
        self._queue.append((kind, message))
        self._wake.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name="amqp-settle")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                kind, message = self._queue.popleft()
                if kind == "ack":
                    while self._queue and self._queue[0][0] == "ack":
                        message = self._queue.popleft()[1]
                try:
                    if kind == "ack":
                        await message.ack(multiple=True)
                    else:
                        await message.nack(requeue=kind == "requeue")
                except Exception as exc:  # the channel went: the broker redelivers
                    self.failures += 1
                    log.debug("amqp_settle_failed", kind=kind, error=str(exc))

    async def close(self) -> None:
        if self.task is not None:
            await stop_tasks([self.task], SETTLE_STOP_WITHIN)
            self.task = None
