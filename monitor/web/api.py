"""The JSON API (/api/v1/*): current state as operators read it. Never shows a secret.

Answers that walk every publisher, subscriber or handle are paced (monitor.pacing): at 10 k
publishers one answer is 100+ ms of Python, which ingest must not wait for. They walk
snapshots, so what goes meanwhile is still listed as it was when the walk began.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from monitor.answers import json_response
from monitor.pacing import Pacer
from monitor.state import Server
from monitor.state.model import Subscriber
from monitor.web.explain import publisher_signals
from monitor.web.keys import AUDIT, CONFIG, STATE


def _servers(request: web.Request) -> list[Server]:
    wanted = request.query.get("server")
    return [
        server
        for name, server in sorted(request.app[STATE].servers.items())
        if wanted is None or name == wanted
    ]


async def _unexplained(server: Server, pacer: Pacer) -> int:
    count = 0
    for session in list(server.sessions.values()):
        await pacer.pause()
        count += sum(1 for h in list(session.handles.values()) if not h.explained)
    return count


async def api_servers(request: web.Request) -> web.Response:
    now_us = time.time() * 1_000_000
    pacer = Pacer()
    out: list[dict[str, Any]] = []
    for server in _servers(request):
        unexplained = await _unexplained(server, pacer)
        info = server.info
        out.append(
            {
                "name": server.name,
                "configured": server.configured,
                "running": server.running,
                "version": info.version_string if info else None,
                "server_name": info.server_name if info else None,
                "public_ip": info.public_ip if info else None,
                "sessions": len(server.sessions),
                "handles": server.handle_count,
                "handles_unexplained": unexplained,
                "rooms": len(server.rooms),
                "publishers": len(server.publishers),
                "subscribers": len(server.subscribers),
                "last_event_age_seconds": max(
                    0.0, round((now_us - server.last_event_timestamp) / 1e6, 3)
                )
                if server.last_event_timestamp
                else None,
            }
        )
    return json_response({"servers": out})


async def api_rooms(request: web.Request) -> web.Response:
    pacer = Pacer()
    out: list[dict[str, Any]] = []
    for server in _servers(request):
        publishers: dict[str, list[str]] = {}
        for room_id, publisher_id in list(server.publishers):
            publishers.setdefault(room_id, []).append(publisher_id)
        subscribers: dict[str, int] = {}
        for subscriber in list(server.subscribers.values()):
            subscribers[subscriber.room] = subscribers.get(subscriber.room, 0) + 1
        await pacer.pause()
        for room_id, room in sorted(server.rooms.items()):
            await pacer.pause()
            out.append(
                {
                    "server": server.name,
                    "room": room_id,
                    "description": room.description,
                    "bitrate_cap": room.bitrate_cap,
                    "bitrate_cap_source": room.cap_source,
                    "max_publishers": room.max_publishers,
                    "recording": room.recording,
                    "publishers": sorted(publishers.get(room_id, ())),
                    "subscribers": subscribers.get(room_id, 0),
                }
            )
    return json_response({"rooms": out})


async def api_publishers(request: web.Request) -> web.Response:
    show_display = request.app[CONFIG].current.signals.expose_display
    now = time.monotonic()
    pacer = Pacer()
    out: list[dict[str, Any]] = []
    for server in _servers(request):
        viewers: dict[tuple[str, str], list[Subscriber]] = {}  # (room, feed) -> subscribers
        for subscriber in list(server.subscribers.values()):
            for feed in subscriber.feed_ids:
                viewers.setdefault((subscriber.room, feed), []).append(subscriber)
        await pacer.pause()
        for (room_id, publisher_id), publisher in sorted(server.publishers.items()):
            await pacer.pause()
            handle = publisher.handle
            watching = viewers.get((room_id, publisher_id), [])
            out.append(
                {
                    "server": server.name,
                    "room": room_id,
                    "publisher": publisher_id,
                    "display": publisher.display if show_display else None,
                    "publishing": publisher.publishing,
                    "session_id": handle[0] if handle else None,
                    "handle_id": handle[1] if handle else None,
                    "opaque_id": publisher.opaque_id,
                    "bitrate_limit": publisher.bitrate_limit,
                    "streams": [
                        {"mid": s.mid, "kind": s.kind, "codec": s.codec, "simulcast": s.simulcast}
                        for s in publisher.streams
                    ],
                    "subscribers": len(watching),
                    **publisher_signals(request, server, publisher, now, watching),
                }
            )
    return json_response({"publishers": out})


async def api_actions(request: web.Request) -> web.Response:
    """The recent remediation decisions, newest first (``?server=`` filters), as audited."""
    wanted = request.query.get("server")
    recent = [e for e in reversed(request.app[AUDIT].recent) if wanted in (None, e["server"])]
    mode = request.app[CONFIG].current.remediation.mode
    return json_response({"mode": mode, "actions": recent})
