"""The actions remediation can take, by name, one signature: (clients, target, decision,
string_ids) -> Janus's reply. They do the I/O, through the target's shared Janus clients;
the executor decides whether they run at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from monitor.config import ACTION_NAMES, TargetConfig
from monitor.janus.clients import JanusClients
from monitor.janus.wire import videoroom_id
from monitor.remediation.policy import Decision

VIDEOROOM = "janus.plugin.videoroom"


class Unavailable(Exception):
    """The action cannot be sent: the target has no URL (or secret) for it."""


Action = Callable[[JanusClients, TargetConfig, Decision, bool | None], Awaitable[dict[str, Any]]]


async def cap_bitrate(
    clients: JanusClients, target: TargetConfig, decision: Decision, string_ids: bool | None
) -> dict[str, Any]:
    """Janus API ``configure {bitrate: cap}`` on the publisher's own session and handle: Janus
    acks, sends the publisher a REMB at once and every 5 s (janus-protocol.md §4.3)."""
    api = clients.api(target.name)
    if api is None:
        raise Unavailable("no janus_url for this target: cap_bitrate needs the Janus API")
    await api.configure_bitrate(decision.session_id, decision.handle_id, decision.cap)
    return {"janus": "ack"}


async def kick(
    clients: JanusClients, target: TargetConfig, decision: Decision, string_ids: bool | None
) -> dict[str, Any]:
    """Admin ``message_plugin`` VideoRoom ``kick {room, id, secret}`` through the target's one
    Admin client (the poller's), with the room's secret from room_secrets when it has one."""
    admin = clients.admin(target.name)
    if admin is None:
        raise Unavailable("no admin_url for this target: kick needs the Admin API")
    body: dict[str, Any] = {
        "request": "kick",
        "room": videoroom_id(decision.room, string_ids),
        "id": videoroom_id(decision.publisher, string_ids),
    }
    secret = target.room_secrets.get(decision.room)
    if secret:
        body["secret"] = secret.reveal()
    return await admin.message_plugin(VIDEOROOM, body)


ACTIONS: dict[str, Action] = {"cap_bitrate": cap_bitrate, "kick": kick}
assert tuple(ACTIONS) == ACTION_NAMES, "config.ACTION_NAMES lists the registry's names"
