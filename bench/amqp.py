"""``python -m bench.amqp`` (``make bench-amqp``): events/s through RabbitMQ beside the
webhook path, in the same run, on the same daemon; then how the shards spread over two and
three daemons and how long balance takes.

1. A private RabbitMQ 3.10 node (lab.rabbitmq) and one daemon (``amqp`` with 8 shards, log
   level warning) in its own process.
2. webhook: ``bench.ingest``'s serial sender (one keep-alive connection, like sampleevh)
   posts its 100-event bodies to the same daemon for ``--seconds``.
3. AMQP: the daemon is paused (SIGSTOP), ``--messages`` of the same bodies are published to
   the consistent-hash exchange (16 route keys, so every shard gets some), the daemon is
   resumed and timed until it has applied them all (``janus_monitor_amqp_messages_total``).
   Backlog consumption is what a broker fleet does at its fastest.
4. spread: daemons are added one at a time (2, then 3) and the time until each owns
   K/N +- 1 shards is measured, with the shard counts.

Prints the figures and the daemon's CPU per event for both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import aio_pika

from bench import ingest_servers
from bench.ingest import (
    EVENTS_PER_BODY,
    Body,
    Server,
    load_bodies,
    measure,
)
from lab.rabbitmq import RabbitBroker
from monitor.fleet import topology

SHARDS = 8
EXCHANGE = "bench-events"
ROUTE_KEYS = 16
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def daemon_server(tmp: Path, broker: RabbitBroker, name: str) -> Server:
    amqp = f"amqp: {{url: '{broker.url()}', exchange: {EXCHANGE}, shards: {SHARDS}}}\n"
    return ingest_servers.daemon_server(tmp, name, amqp, guard=True, check_accepted=True)


def scrape(server: Server) -> dict[str, float]:
    with _OPENER.open(server.base_url + "/metrics", timeout=5) as reply:
        text = reply.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith('janus_monitor_amqp_messages_total{outcome="applied"}'):
            values["applied"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("janus_monitor_shard_owned{") and line.endswith(" 1.0"):
            values["shards"] = values.get("shards", 0.0) + 1
        elif line.startswith("janus_monitor_amqp_connected "):
            values["connected"] = float(line.rsplit(" ", 1)[1])
    return values


def wait_for(server: Server, key: str, value: float, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if scrape(server).get(key, 0.0) >= value:
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"{server.label}: {key} did not reach {value} within {timeout:g}s")


async def publish(broker: RabbitBroker, bodies: Sequence[Body], count: int) -> float:
    connection = await aio_pika.connect(broker.url("janus"))
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, topology.EXCHANGE_TYPE, durable=False)
        started = time.perf_counter()
        for i in range(count):
            message = aio_pika.Message(bodies[i % len(bodies)].data)
            await exchange.publish(message, routing_key=f"janus-{i % ROUTE_KEYS}")
        return time.perf_counter() - started


def amqp_rate(
    server: Server, broker: RabbitBroker, bodies: Sequence[Body], count: int
) -> tuple[float, float | None]:
    """Events/s of backlog consumption, and the daemon's CPU microseconds per event."""
    assert server.proc is not None
    before = scrape(server).get("applied", 0.0)
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        published = asyncio.run(publish(broker, bodies, count))
    finally:
        cpu_before = server.cpu_seconds()
        os.kill(server.proc.pid, signal.SIGCONT)
    took = wait_for(server, "applied", before + count, 300.0)
    cpu_after = server.cpu_seconds()
    events = count * EVENTS_PER_BODY
    cpu = (
        None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / events * 1e6
    )
    print(f"  published {count:,} messages in {published:.2f} s (the daemon paused)")
    return events / took, cpu


def spread(tmp: Path, broker: RabbitBroker, first: Server) -> list[str]:
    lines: list[str] = []
    daemons = [first]
    for n in (2, 3):
        server = daemon_server(tmp, broker, f"daemon-{n}")
        server.start()
        server.wait_ready()
        daemons.append(server)
        started = time.monotonic()
        counts: list[int] = []
        while time.monotonic() - started < 60:
            counts = [int(scrape(d).get("shards", 0)) for d in daemons]
            if sum(counts) == SHARDS and max(counts) - min(counts) <= 1:
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        lines.append(f"  {n} daemons: shards {counts} (K={SHARDS}), balanced {took:.1f} s after "
                     "the new one answered")  # fmt: skip
    for server in daemons[1:]:
        server.stop()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.amqp", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="webhook window")
    parser.add_argument("--messages", type=int, default=3000, help="AMQP messages (x100 events)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="janus-monitor-bench-amqp-"))
    bodies = load_bodies()
    broker = RabbitBroker(tmp / "rabbitmq")
    broker.start()
    daemon = daemon_server(tmp, broker, "daemon-1")
    try:
        daemon.start()
        daemon.wait_ready()
        wait_for(daemon, "shards", SHARDS, 30.0)
        print(f"janus-monitor AMQP benchmark: RabbitMQ 3.10 on 127.0.0.1, {SHARDS} shards, "
              f"aio-pika {aio_pika.__version__}, {os.cpu_count()} CPUs")  # fmt: skip
        webhook = asyncio.run(measure(daemon, bodies, 1, args.seconds))
        rate, cpu = amqp_rate(daemon, broker, bodies, args.messages)
        hook_cpu = webhook.cpu_us_per_request
        print(
            f"  webhook serial: {webhook.events_per_s:>10,.0f} ev/s, "
            f"{(hook_cpu or 0) / EVENTS_PER_BODY:.2f} us CPU/event ({webhook.requests} POSTs)"
        )
        print(f"  AMQP backlog:   {rate:>10,.0f} ev/s, {cpu or 0:.2f} us CPU/event "
              f"({args.messages:,} messages of {EVENTS_PER_BODY} events)")  # fmt: skip
        print(f"  AMQP / webhook: {rate / webhook.events_per_s:.0%}")
        for line in spread(tmp, broker, daemon):
            print(line)
    finally:
        daemon.stop()
        broker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
