"""Two real Janus publishing through rabbitmqevh to a real RabbitMQ, two daemons sharing the
shards: one owner per Janus, gauges that add up, failover when a daemon is killed."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

import lab.janus
from lab.janus import JanusLabConfig, JanusProcess, LabAmqp, free_ports, post_json
from lab.netns import LAB_INTERFACE
from lab.prometheus import start_prometheus
from lab.rabbitmq import RabbitBroker
from monitor.doctor import doctor
from monitor.fleet import topology
from monitor.fleet.ownership import MEMBER_TIMEOUT_PROBES
from tests.conftest import Samples, make_config, require_tool, sample
from tests.e2e.fleet import DaemonProcess, owned_by, poll_until
from tests.e2e.test_stack import query
from tests.test_dashboards import as_promql, panel_queries
from tools.dashboards import BROKER_ONLY

pytestmark = pytest.mark.e2e

ROOM = 1234
SHARDS = 8
ADMIN_SECRET = "fleet-admin-secret"
JANUS_NAMES = ("janus-a", "janus-b")


def janus_config(
    name: str, broker: RabbitBroker, exchange: str, ports: list[int] | None = None
) -> JanusLabConfig:
    """A fleet Janus; ``ports`` (http, admin, ws) when the caller takes them with others'."""
    http_port, admin_port, ws_port = ports or free_ports(3)
    return JanusLabConfig(
        server_name=name, admin_secret=ADMIN_SECRET, http_port=http_port,
        admin_port=admin_port, ws_port=ws_port, stats_period=1,
        ice_enforce_list=LAB_INTERFACE, ignore_mdns=True, evh_json="compact",
        evh_amqp=LabAmqp(port=broker.port, username="janus", password="janus-secret",
                         exchange=exchange, route_key=name, heartbeat=4),
    )  # fmt: skip


def daemon_config(broker: RabbitBroker, exchange: str, janus: list[JanusLabConfig],
                  audit: Path) -> dict[str, Any]:  # fmt: skip
    return {
        "amqp": {"url": broker.url(), "exchange": exchange, "shards": SHARDS},
        "targets": [
            {
                "name": cfg.server_name,
                "admin_url": cfg.admin_url,
                "admin_secret": ADMIN_SECRET,
                "janus_url": cfg.janus_url,
                "poll_interval": "1s",
                "reconcile_interval": "3s",
            }
            for cfg in janus
        ],
        "remediation": {"audit_log": str(audit)},
    }


@dataclass
class Fleet:
    broker: RabbitBroker
    exchange: str
    janus: list[JanusLabConfig]
    daemons: list[DaemonProcess]
    http: aiohttp.ClientSession
    conf_dirs: dict[str, Path]
    publishers: list[Any] = field(default_factory=list)

    async def scrape(self) -> dict[str, Samples]:
        return {d.name: await d.metrics(self.http) for d in self.daemons if d.alive}

    def listed_publishers(self, cfg: JanusLabConfig) -> int:
        reply = post_json(cfg.admin_url, {
            "janus": "message_plugin", "transaction": "fleet", "admin_secret": ADMIN_SECRET,
            "plugin": "janus.plugin.videoroom", "request": {"request": "listparticipants",
                                                            "room": ROOM}})  # fmt: skip
        participants = reply["response"]["participants"]
        return sum(1 for p in participants if p.get("publisher"))

    async def until(self, check: Any, within: float, what: str) -> float:
        """Seconds until ``check(scrapes)`` holds."""
        took, _ = await poll_until(self.scrape_ownership, check, within, what)
        return took

    async def scrape_ownership(self) -> dict[str, Samples]:
        """The scrapes, keeping only the ownership series when shown in a failure."""
        return OwnershipScrapes(await self.scrape())


class OwnershipScrapes(dict[str, Samples]):
    """Scrapes whose repr (in a failure message) shows only the ownership series."""

    def __repr__(self) -> str:
        return repr({n: {k: v for k, v in s.items() if "owned" in k[0]} for n, s in self.items()})


def owners(scrapes: dict[str, Samples], server: str) -> list[str]:
    def owns(samples: Samples) -> bool:
        return owned_by(samples, "janus_monitor_emitter_owned", "server").get(server) == 1.0

    return [name for name, samples in scrapes.items() if owns(samples)]


def shard_counts(scrapes: dict[str, Samples]) -> dict[str, int]:
    return {name: int(sum(owned_by(s, "janus_monitor_shard_owned", "shard").values()))
            for name, s in scrapes.items()}  # fmt: skip


def publishers_seen(scrapes: dict[str, Samples], server: str) -> float:
    """The fleet's total of the room's publisher gauge for one Janus."""
    return sum(sample(s, "janus_videoroom_room_publishers", server=server, room=str(ROOM)) or 0.0
               for s in scrapes.values())  # fmt: skip


def one_owner_each(scrapes: dict[str, Samples]) -> bool:
    return all(len(owners(scrapes, name)) == 1 for name in JANUS_NAMES)


@pytest.fixture
async def fleet(
    rabbit: RabbitBroker, amqp_exchange: str, janus_binary: str, tmp_path: Path
) -> AsyncIterator[Fleet]:
    from lab.webrtc import Publisher

    # Every port in one go: ports taken in separate calls can repeat one just given back, and
    # the daemons listen before the Janus start (a daemon got janus-b's Admin port once).
    ports = free_ports(3 * len(JANUS_NAMES) + 2)
    janus = [janus_config(name, rabbit, amqp_exchange, ports[3 * i : 3 * i + 3])
             for i, name in enumerate(JANUS_NAMES)]  # fmt: skip
    config = daemon_config(rabbit, amqp_exchange, janus, tmp_path / "actions.jsonl")
    daemons = [DaemonProcess(f"daemon-{i}", config, tmp_path, port=ports[-2 + i])
               for i in range(2)]  # fmt: skip
    processes: list[JanusProcess] = []
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        conf_dirs = {cfg.server_name: tmp_path / cfg.server_name for cfg in janus}
        the_fleet = Fleet(rabbit, amqp_exchange, janus, daemons, http, conf_dirs)
        try:
            for daemon in daemons:
                await asyncio.to_thread(daemon.start)
            for cfg in janus:
                conf = conf_dirs[cfg.server_name]
                lab.janus.write_janus_config(conf, cfg)
                process = JanusProcess(cfg, binary=janus_binary)
                processes.append(process)
                await asyncio.to_thread(process.start, conf, tmp_path / f"{cfg.server_name}.log")
            for i, cfg in enumerate(janus):
                for n in range(i + 1):  # 1 publisher on janus-a, 2 on janus-b
                    publisher = Publisher(cfg.janus_url, ROOM, f"p{n}", opaque_id=f"fleet-{n}")
                    the_fleet.publishers.append(publisher)
                    await publisher.start()
            yield the_fleet
        finally:
            for publisher in the_fleet.publishers:
                await publisher.close()
            for process in processes:
                await asyncio.to_thread(process.stop)
            for daemon in daemons:
                daemon.stop()


async def test_each_janus_has_one_owner_and_the_gauges_add_up(fleet: Fleet) -> None:
    """Each emitter is owned by exactly one daemon, the shards spread 4/4, and the sum of both
    daemons' publisher gauges is what each Janus lists."""
    expected = {cfg.server_name: fleet.listed_publishers(cfg) for cfg in fleet.janus}
    assert expected == {"janus-a": 1, "janus-b": 2}

    def settled(scrapes: dict[str, Samples]) -> bool:
        return (
            one_owner_each(scrapes)
            and sorted(shard_counts(scrapes).values()) == [SHARDS // 2, SHARDS // 2]
            and all(publishers_seen(scrapes, n) == expected[n] for n in JANUS_NAMES)
        )

    await fleet.until(settled, 30.0, "one owner per Janus, 4 shards each, gauges adding up")
    scrapes = await fleet.scrape()
    for name in JANUS_NAMES:  # the other daemon exports nothing of it (no double count)
        (owner,) = owners(scrapes, name)
        for other, samples in scrapes.items():
            if other != owner:
                assert sample(samples, "janus_up", server=name) is None
                assert sample(samples, "janus_sessions", server=name) is None
    shard_queues = {topology.shard_queue(fleet.exchange, i) for i in range(SHARDS)}
    consumers = [c for c in fleet.broker.list_consumers() if c["queue_name"] in shard_queues]
    assert len(consumers) == 2 * SHARDS  # both daemons consume every shard...
    active = sorted(str(c["queue_name"]) for c in consumers if c["active"])
    assert active == sorted(shard_queues)  # ...and the broker has one active consumer on each


async def test_a_killed_daemon_hands_over_within_seconds(fleet: Fleet) -> None:
    """SIGKILL one daemon: the other owns every shard and both Janus, with correct gauges."""
    expected = {cfg.server_name: fleet.listed_publishers(cfg) for cfg in fleet.janus}

    def balanced(scrapes: dict[str, Samples]) -> bool:
        counts = shard_counts(scrapes)
        return one_owner_each(scrapes) and sorted(counts.values()) == [4, 4]

    await fleet.until(balanced, 30.0, "balanced before the kill")
    victim, survivor = fleet.daemons
    victim.kill()

    def taken_over(scrapes: dict[str, Samples]) -> bool:
        return (
            shard_counts(scrapes) == {survivor.name: SHARDS}
            and all(owners(scrapes, n) == [survivor.name] for n in JANUS_NAMES)
            and all(publishers_seen(scrapes, n) == expected[n] for n in JANUS_NAMES)
        )

    took = await fleet.until(taken_over, 20.0, "the survivor owns everything")
    print(f"failover: {took:.2f}s from SIGKILL to the survivor owning all, gauges correct")
    hold_until = time.monotonic() + MEMBER_TIMEOUT_PROBES * 1.0 + 3.0  # the dead one times out
    while time.monotonic() < hold_until:
        assert taken_over(await fleet.scrape()), "a shard went back to the killed daemon"
        await asyncio.sleep(0.2)
    await asyncio.to_thread(victim.start)  # back: the shards spread out again

    def rebalanced(scrapes: dict[str, Samples]) -> bool:
        return balanced(scrapes) and all(
            publishers_seen(scrapes, n) == expected[n] for n in JANUS_NAMES
        )

    took = await fleet.until(rebalanced, 40.0, "balanced again after the restart")
    print(f"rebalance: {took:.2f}s from restart to 4/4 with the gauges correct")


async def test_doctor_passes_the_fleet_janus_rabbitmqevh_settings(fleet: Fleet) -> None:
    """doctor reads each Janus's rabbitmqevh file and finds the fleet's settings right."""
    config = make_config(yaml.safe_dump(fleet.daemons[0].config))
    out = io.StringIO()
    code = await doctor(config, out=out, janus_configs=fleet.conf_dirs)
    text = out.getvalue()
    for name in JANUS_NAMES:
        assert f"OK      {name}: rabbitmqevh publishes to '{fleet.exchange}' with route_key " \
               f"'{name}', heartbeat 4" in text, text  # fmt: skip
    assert "ERROR" not in text and code == 0, text


async def test_prometheus_sees_one_owner_each_and_the_fleet_dashboard_has_data(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Debian's Prometheus scraping both daemons: janus:emitter_owners:sum is 1 for each
    Janus, the publishers add up across the fleet, and every panel of the fleet dashboard
    returns data."""
    require_tool("prometheus")
    daemons = [d.base.removeprefix("http://") for d in fleet.daemons]
    (tmp_path / "prom").mkdir()
    prometheus = await asyncio.to_thread(start_prometheus, tmp_path / "prom", daemons)
    try:
        expected = {cfg.server_name: float(fleet.listed_publishers(cfg)) for cfg in fleet.janus}

        async def owners_and_publishers() -> dict[str, Any]:
            owners = await query(prometheus, "janus:emitter_owners:sum")
            publishers = await query(
                prometheus, "sum by (server) (janus_videoroom_room_publishers)"
            )
            return {
                "owners": {r["metric"]["server"]: float(r["value"][1]) for r in owners},
                "publishers": {r["metric"]["server"]: float(r["value"][1]) for r in publishers},
            }

        def right(seen: dict[str, Any]) -> bool:
            return seen["owners"] == dict.fromkeys(JANUS_NAMES, 1.0) and (
                seen["publishers"] == expected
            )

        await poll_until(owners_and_publishers, right, 40.0, "one owner each in Prometheus",
                         every=0.5)  # fmt: skip
        await asyncio.sleep(3)  # a few more scrapes for the rates
        empty = [
            f"{uid} / {title}: {expr}"
            for uid, title, expr in panel_queries()
            if uid in BROKER_ONLY and not await query(prometheus, as_promql(expr))
        ]
        assert empty == []
    finally:
        await asyncio.to_thread(prometheus.stop)
