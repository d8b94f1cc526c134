"""Operator endpoints: /metrics, health, reload, the JSON API and the landing page."""

from __future__ import annotations

import html
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import __version__
from monitor.ingest.http import json_response, receive_events
from monitor.ingest.ws import receive_event_socket
from monitor.runtime import RUNTIME, Runtime
from monitor.state import Server


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[RUNTIME].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def ready(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if runtime.ready:
        return web.Response(text="ready\n")
    waiting = ", ".join(sorted(runtime.ready_gates))
    return web.Response(text=f"not ready: waiting for {waiting}\n", status=503)


async def reload(request: web.Request) -> web.Response:
    error = request.app[RUNTIME].reload()
    if error is not None:
        return json_response({"error": error}, 500)
    return json_response({"status": "reloaded"})


def _servers(runtime: Runtime, request: web.Request) -> list[Server]:
    wanted = request.query.get("server")
    return [
        server
        for name, server in sorted(runtime.state.servers.items())
        if wanted is None or name == wanted
    ]


async def api_servers(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    now_us = time.time() * 1_000_000
    out: list[dict[str, Any]] = []
    for server in _servers(runtime, request):
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
                "handles_unexplained": sum(1 for h in server.handles() if not h.explained),
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
    runtime = request.app[RUNTIME]
    out: list[dict[str, Any]] = []
    for server in _servers(runtime, request):
        publishers: dict[str, list[str]] = {}
        for room_id, publisher_id in server.publishers:
            publishers.setdefault(room_id, []).append(publisher_id)
        subscribers: dict[str, int] = {}
        for subscriber in server.subscribers.values():
            subscribers[subscriber.room] = subscribers.get(subscriber.room, 0) + 1
        for room_id, room in sorted(server.rooms.items()):
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
    runtime = request.app[RUNTIME]
    show_display = runtime.config.signals.expose_display
    out: list[dict[str, Any]] = []
    for server in _servers(runtime, request):
        viewers: dict[tuple[str, str], int] = {}  # (room, feed) -> subscriber handles
        for subscriber in server.subscribers.values():
            for feed in subscriber.feed_ids:
                key = (subscriber.room, feed)
                viewers[key] = viewers.get(key, 0) + 1
        for (room_id, publisher_id), publisher in sorted(server.publishers.items()):
            handle = publisher.handle
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
                    "subscribers": viewers.get((room_id, publisher_id), 0),
                }
            )
    return json_response({"publishers": out})


async def landing(request: web.Request) -> web.Response:
    webhook = html.escape(request.app[RUNTIME].config.webhook.path)
    links = [
        ("/metrics", "Prometheus metrics"),
        ("/api/v1/servers", "servers (JSON)"),
        ("/api/v1/rooms", "rooms (JSON)"),
        ("/api/v1/publishers", "publishers (JSON)"),
        ("/-/healthy", "liveness"),
        ("/-/ready", "readiness"),
    ]
    items = "\n".join(f'<li><a href="{href}">{href}</a> {text}</li>' for href, text in links)
    page = (
        f"<!doctype html><html><head><title>janus-monitor</title></head><body>"
        f"<h1>janus-monitor {__version__}</h1><ul>{items}</ul>"
        f"<p>Janus event handlers deliver to <code>{webhook}</code> "
        f"(POST for sampleevh, WebSocket for wsevh). POST /-/reload reloads the config.</p>"
        f"</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def add_routes(app: web.Application, webhook_path: str) -> None:
    app.router.add_post(webhook_path, receive_events)
    app.router.add_get(webhook_path, receive_event_socket)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    app.router.add_get("/api/v1/servers", api_servers)
    app.router.add_get("/api/v1/rooms", api_rooms)
    app.router.add_get("/api/v1/publishers", api_publishers)
    app.router.add_get("/", landing)
