"""/metrics, liveness, readiness, reload and the landing page."""

from __future__ import annotations

import html
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor import __version__
from monitor.answers import json_response
from monitor.pacing import Pacer
from monitor.web.keys import CONFIG, METRICS, READINESS, RELOAD

WRITE_BYTES = 256 * 1024
"""Bytes handed to the socket per write. One write of a whole 8.6 MB /metrics held the loop
15 ms (the kernel moves it through loopback in the writer's time); this much is about 0.3."""


def pieces(chunks: list[bytes], size: int = WRITE_BYTES) -> Iterator[bytes]:
    """The chunks joined into pieces of about ``size`` bytes (one chunk larger goes whole)."""
    pending: list[bytes] = []
    pending_bytes = 0
    for chunk in chunks:
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= size:
            yield b"".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield b"".join(pending)


async def metrics(request: web.Request) -> web.StreamResponse:
    chunks = await request.app[METRICS]()
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
    response.content_length = sum(map(len, chunks))
    await response.prepare(request)
    if request.method == "HEAD":  # the headers of a GET, and no body
        await response.write_eof()
        return response
    pacer = Pacer()
    for piece in pieces(chunks):
        await response.write(piece)  # waits only when the socket's buffer is full
        await pacer.pause()
    await response.write_eof()
    return response


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
