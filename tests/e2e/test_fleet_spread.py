"""Shards spread over three daemon processes on a real broker, and back over two when one is
killed: K/N +- 1 each, one active consumer per shard the whole time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from lab.janus import free_ports
from lab.rabbitmq import RabbitBroker
from tests.conftest import Samples
from tests.e2e.fleet import DaemonProcess, owned_by, poll_until

pytestmark = pytest.mark.e2e

SHARDS = 8


async def shard_counts(daemons: list[DaemonProcess], http: aiohttp.ClientSession) -> list[int]:
    scrapes: list[Samples] = [await d.metrics(http) for d in daemons if d.alive]
    return [int(sum(owned_by(s, "janus_monitor_shard_owned", "shard").values())) for s in scrapes]


async def balanced_within(
    daemons: list[DaemonProcess], http: aiohttp.ClientSession, within: float
) -> tuple[float, list[int]]:
    def balanced(counts: list[int]) -> bool:
        assert sum(counts) <= SHARDS, f"a shard with two owners: {counts}"
        return sum(counts) == SHARDS and max(counts) - min(counts) <= 1

    return await poll_until(lambda: shard_counts(daemons, http), balanced, within, "balance",
                            every=0.2)  # fmt: skip


async def test_three_daemons_split_the_shards_and_two_take_them_back(
    rabbit: RabbitBroker, amqp_exchange: str, tmp_path: Path
) -> None:
    """3 daemons own 3/3/2 of 8 shards; after a SIGKILL the other two own 4/4."""
    config = {"amqp": {"url": rabbit.url(), "exchange": amqp_exchange, "shards": SHARDS}}
    ports = free_ports(3)  # in one go: each daemon's port is taken before any listens
    daemons = [DaemonProcess(f"daemon-{i}", config, tmp_path, port=ports[i]) for i in range(3)]
    try:
        async with aiohttp.ClientSession() as http:
            for daemon in daemons:
                await asyncio.to_thread(daemon.start)
            took, counts = await balanced_within(daemons, http, 60.0)
            assert sorted(counts) == [2, 3, 3]
            print(f"3 daemons: {counts} {took:.1f}s after the third answered")
            daemons[0].kill()
            took, counts = await balanced_within(daemons, http, 30.0)
            assert counts == [4, 4]
            print(f"2 daemons after a SIGKILL: {counts} in {took:.1f}s")
    finally:
        for daemon in daemons:
            daemon.stop()
