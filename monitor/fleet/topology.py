"""The broker objects a fleet uses, their names and arguments, and the daemons' own messages
(probes and heartbeats). Names derive from ``amqp.exchange``, so one broker can carry
several fleets."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

import orjson

EXCHANGE_TYPE = "x-consistent-hash"
# Exactly how rabbitmqevh declares its exchange (passive, durable, auto_delete and internal
# all 0, no arguments): any difference makes one side's declare fail with PRECONDITION_FAILED.
EXCHANGE_DURABLE = False
EXCHANGE_AUTO_DELETE = False

SHARD_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-single-active-consumer": True,
}
BINDING_WEIGHT = "1"  # the consistent-hash exchange reads the binding key as the weight

PROBE_TYPE = "janus-monitor.probe"
HEARTBEAT_TYPE = "janus-monitor.heartbeat"
PROBE_TTL_MS = 10_000  # an unconsumed probe expires rather than pile up in the backlog


def member_id() -> str:
    """Unique per process, readable in ``rabbitmqctl list_consumers`` and the metrics."""
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}-{token_hex(2)}"


def shard_queue(exchange: str, index: int) -> str:
    return f"{exchange}.shard.{index}"


def members_exchange(exchange: str) -> str:
    return f"{exchange}.members"


def member_queue(exchange: str, member: str) -> str:
    return f"{exchange}.member.{member}"


@dataclass(frozen=True, slots=True)
class Probe:
    member: str
    target: str | None  # set when sent through the consistent-hash exchange for a target


@dataclass(frozen=True, slots=True)
class Heartbeat:
    member: str
    ready: bool
    owned: tuple[int, ...]


def probe_body(member: str, target: str | None = None) -> bytes:
    return orjson.dumps({"member": member, "target": target})


def heartbeat_body(member: str, ready: bool, owned: list[int]) -> bytes:
    return orjson.dumps({"member": member, "ready": ready, "owned": owned})


def _from_member(body: bytes) -> dict[str, Any] | None:
    """A JSON object naming the member that sent it, or None (anyone may publish here)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("member"), str):
        return None
    return data


def parse_probe(body: bytes) -> Probe | None:
    data = _from_member(body)
    if data is None:
        return None
    target = data.get("target")
    return Probe(data["member"], target if isinstance(target, str) else None)


def parse_heartbeat(body: bytes) -> Heartbeat | None:
    data = _from_member(body)
    if data is None:
        return None
    owned = data.get("owned")
    shards = tuple(i for i in owned if isinstance(i, int)) if isinstance(owned, list) else ()
    return Heartbeat(data["member"], data.get("ready") is True, shards)
