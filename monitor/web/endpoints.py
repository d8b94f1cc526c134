"""/metrics, liveness, readiness, reload and the landing page."""

from __future__ import annotations

import html

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor import __version__
from monitor.answers import json_response
from monitor.web.keys import CONFIG, METRICS, READINESS, RELOAD


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS]()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def ready(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    if readiness.ready:
        return web.Response(text="ready\n")
    waiting = ", ".join(readiness.waiting)
    return web.Response(text=f"not ready: waiting for {waiting}\n", status=503)


async def reload(request: web.Request) -> web.Response:
    error, needs_restart = request.app[RELOAD]()
    if error is not None:
        return json_response({"error": error}, 500)
    if needs_restart:  # applied, except these: they keep their running values
        return json_response({"status": "reloaded", "needs_restart": needs_restart})
    return json_response({"status": "reloaded"})


async def landing(request: web.Request) -> web.Response:
    webhook = html.escape(request.app[CONFIG].current.webhook.path)
    links = [
        ("/metrics", "Prometheus metrics"),
        ("/api/v1/servers", "servers (JSON)"),
        ("/api/v1/rooms", "rooms (JSON)"),
        ("/api/v1/publishers", "publishers (JSON)"),
        ("/-/healthy", "liveness"),
        ("/-/ready", "readiness"),
    ]
    items = "\n".join(f'<li><a href="{href}">{href}</a> {text}</li>' for href, text in links)
    items += (
        "\n<li><code>/api/v1/publishers/{server}/{room}/{id}</code> one publisher explained</li>"
        "\n<li><code>/api/v1/handles/{server}/{session}/{handle}</code> one handle explained</li>"
    )
    page = (
        f"<!doctype html><html><head><title>janus-monitor</title></head><body>"
        f"<h1>janus-monitor {__version__}</h1><ul>{items}</ul>"
        f"<p>Janus event handlers deliver to <code>{webhook}</code> "
        f"(POST for sampleevh, WebSocket for wsevh). POST /-/reload reloads the config.</p>"
        f"</body></html>"
    )
    return web.Response(text=page, content_type="text/html")
