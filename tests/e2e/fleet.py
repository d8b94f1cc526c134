"""Broker fixtures and helpers for the fleet tests: a private RabbitMQ node for the session,
an exchange per test, and publishing as Janus's rabbitmqevh does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import aiohttp
import pytest
import yaml

import lab.rabbitmq
from lab.janus import file_tail, free_port, http_status, stop_process
from lab.netns import LabNetns
from lab.rabbitmq import RabbitBroker
from monitor.fleet import topology
from tests.conftest import Samples, metric_samples, unavailable

T = TypeVar("T")


@pytest.fixture(scope="session")
def rabbit(lab_netns: LabNetns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitBroker]:
    """One private RabbitMQ node for the session (about 10 s to start); tests keep apart by
    using an exchange of their own (``amqp_exchange``)."""
    try:
        lab.rabbitmq.require_rabbitmq()
    except FileNotFoundError as exc:
        unavailable(str(exc))
    broker = RabbitBroker(tmp_path_factory.mktemp("rabbitmq"))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def amqp_exchange(request: pytest.FixtureRequest) -> str:
    """An exchange name unique to the test, so its shard queues are its own."""
    return f"jm-{request.node.name[:60]}-{time.monotonic_ns() % 10**9}"


PUBLISH_TIMEOUT = 30.0  # seconds for publish_as_janus, connect included


def amqp_config(broker: RabbitBroker, exchange: str, shards: int = 4, targets: str = "") -> str:
    """A daemon's YAML for the fleet on ``exchange`` (probes every 200 ms, to be quick)."""
    return (
        f"amqp: {{url: '{broker.url()}', exchange: '{exchange}', shards: {shards}, "
        "probe_interval: 200ms}\n"
        f"targets: [{targets}]\n"
    )


async def publish_as_janus(broker: RabbitBroker, exchange: str, route_key: str,
                           payloads: list[bytes]) -> None:  # fmt: skip
    """What rabbitmqevh does: declare the exchange its way, publish non-persistent. Bounded:
    a broker that stops answering (or never confirms) fails here, not as a hung test."""
    async with asyncio.timeout(PUBLISH_TIMEOUT):
        connection = await aio_pika.connect(broker.url("janus"), timeout=PUBLISH_TIMEOUT)
        async with connection:
            channel = await connection.channel()
            target = await channel.declare_exchange(exchange, topology.EXCHANGE_TYPE, durable=False)
            for payload in payloads:
                await target.publish(aio_pika.Message(payload), routing_key=route_key)


@dataclass
class DaemonProcess:
    """``janus-monitor run`` in a process of its own, so it can be killed as a process is."""

    name: str
    config: dict[str, Any]
    work: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.config = {**self.config, "listen": f"127.0.0.1:{self.port}",
                       "log": {"format": "json"}}  # fmt: skip

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.work / f"{self.name}.log"

    def start(self, timeout: float = 20.0) -> DaemonProcess:
        self.work.mkdir(parents=True, exist_ok=True)
        path = self.work / f"{self.name}.yml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(path)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{file_tail(self.log)}")
            if http_status(f"{self.base}/-/healthy") == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start:\n{file_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL: no cancel, no close; the broker sees the connection drop."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def metrics(self, http: aiohttp.ClientSession) -> Samples:
        async with http.get(f"{self.base}/metrics") as response:
            assert response.status == 200
            return metric_samples(await response.text())


def owned_by(samples: Samples, metric: str, label: str) -> dict[str, float]:
    """``{label value: value}`` of one gauge, e.g. janus_monitor_emitter_owned by server."""
    return {labels[label]: v for (n, fs), v in samples.items() if n == metric
            for labels in (dict(fs),)}  # fmt: skip


async def poll_until(
    read: Callable[[], Awaitable[T]], check: Callable[[T], bool], within: float, what: str,
    every: float = 0.1,
) -> tuple[float, T]:  # fmt: skip
    """Seconds until ``check(await read())`` holds, and that reading; fails naming ``what``
    with the last reading."""
    started = time.monotonic()
    last: T | None = None
    while time.monotonic() - started < within:
        last = await read()
        if check(last):
            return time.monotonic() - started, last
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within:g}s: {what}; last reading: {last!r:.2000}")
