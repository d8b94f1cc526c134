"""GET {webhook.path} as a WebSocket (wsevh, subprotocol janus-event-handlers)."""

from __future__ import annotations

import asyncio
import time

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from monitor.answers import json_response
from monitor.ingest.auth import CHALLENGE, authorized
from monitor.ingest.body import BodyError
from monitor.ingest.keys import CONFIG, OPEN_SOCKETS, PIPELINE, TELEMETRY

SUBPROTOCOL = "janus-event-handlers"

log = structlog.get_logger("monitor.ingest")


async def receive_event_socket(request: web.Request) -> web.StreamResponse:
    webhook = request.app[CONFIG].current.webhook
    telemetry, pipeline = request.app[TELEMETRY], request.app[PIPELINE]
    socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=webhook.max_body_bytes,
                                   heartbeat=30.0)  # fmt: skip
    # Credentials first: nothing of the handshake is looked at for a client without them.
    if not authorized(request.headers.get("Authorization"), webhook.basic_auth):
        telemetry.reject("unauthorized")
        telemetry.request("ws", 401)
        log.warning("webhook_socket_refused", remote=request.remote, status=401,
                    reason="unauthorized")  # fmt: skip
        return json_response(
            {"error": "missing or wrong credentials (HTTP basic auth)"}, 401, CHALLENGE
        )
    try:
        ready = socket.can_prepare(request).ok
        problem = f"POST events here, or open a WebSocket (subprotocol {SUBPROTOCOL})"
    except ValueError:  # aiohttp raises on header values it cannot read (a key not ASCII...)
        ready, problem = False, "invalid WebSocket handshake headers"
    if not ready:
        telemetry.request("ws", 400)
        log.warning("webhook_socket_refused", remote=request.remote, status=400,
                    reason="bad_handshake", error=problem)  # fmt: skip
        return json_response({"error": problem}, 400)
    await socket.prepare(request)
    request.app[OPEN_SOCKETS].add(socket)
    log.info("webhook_socket_open", remote=request.remote, protocol=socket.ws_protocol)
    async for message in socket:
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            started = time.perf_counter()
            try:
                result = pipeline.ingest_body(message.data)
            except BodyError as exc:
                telemetry.reject(exc.reason)
                telemetry.request("ws", exc.status)
                log.warning("webhook_batch", transport="ws", status=exc.status,
                            reason=exc.reason, accepted=0, rejected=1,
                            error=exc.message)  # fmt: skip
                await socket.send_str(orjson.dumps({"error": exc.message}).decode())
                continue
            telemetry.request("ws", 200)
            fields = {
                "transport": "ws",
                "bytes": len(message.data),
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            asyncio.get_running_loop().call_soon(pipeline.after_answer, result, fields)
            await socket.send_str(orjson.dumps(result.as_json()).decode())
        elif message.type == WSMsgType.ERROR:
            error = message.data  # the exception; socket.exception() is not always set
            code = getattr(error, "code", None)
            if code == WSCloseCode.MESSAGE_TOO_BIG:
                telemetry.reject("too_large")
                telemetry.request("ws", 413)
            elif code == WSCloseCode.INVALID_TEXT:  # a text frame that is not UTF-8: 1007
                telemetry.reject("malformed_json")
                telemetry.request("ws", 400)
            log.warning("webhook_socket_error", remote=request.remote, error=str(error))
    log.info("webhook_socket_closed", remote=request.remote, code=socket.close_code)
    return socket
