"""POST {webhook.path}: sampleevh delivery. Answer fast: Janus sends one POST at a time."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web

from monitor.answers import json_response
from monitor.ingest.auth import CHALLENGE, authorized
from monitor.ingest.body import BodyError, decompress
from monitor.ingest.keys import CONFIG, DUPLICATES, PIPELINE, TELEMETRY

log = structlog.get_logger("monitor.ingest")


async def read_limited(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BodyError(413, "too_large", f"body is over webhook.max_body_bytes ({limit} bytes)")
    if length == 0:
        return b""
    try:
        if length is not None:
            return await request.content.readexactly(length)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise BodyError(
                    413, "too_large", f"body is over webhook.max_body_bytes ({limit} bytes)"
                )
            chunks.append(chunk)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        # The sender closed before the end of its body (aiohttp cancels the read with a
        # ConnectionResetError): a truncated body, counted like one, not a 500 and a traceback.
        raise BodyError(400, "malformed_json", "body was cut short by the sender") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def receive_events(request: web.Request) -> web.StreamResponse:
    webhook = request.app[CONFIG].current.webhook
    telemetry, pipeline = request.app[TELEMETRY], request.app[PIPELINE]
    started = time.perf_counter()
    encoding = request.headers.get("Content-Encoding")
    if not authorized(request.headers.get("Authorization"), webhook.basic_auth):
        telemetry.reject("unauthorized")
        telemetry.request("http", 401)
        log.warning("webhook_batch", transport="http", status=401, remote=request.remote,
                    reason="unauthorized", accepted=0, rejected=1,
                    error="missing or wrong credentials")  # fmt: skip
        # The unread body is drained by aiohttp after the answer (lingering read), which keeps
        # the connection usable; request.read() here would fail over client_max_size (1 MiB).
        return json_response(
            {"error": "missing or wrong credentials (HTTP basic auth)"}, 401, CHALLENGE
        )
    try:
        raw = await read_limited(request, webhook.max_body_bytes)
        guard = request.app[DUPLICATES] if webhook.duplicate_window > 0 else None
        if guard is not None:
            digest = guard.digest(raw, encoding)
            first = guard.seen(digest, time.monotonic(), webhook.duplicate_window)
            if first is not None:
                return _duplicate(request, first, len(raw), encoding)
        result = pipeline.ingest_body(decompress(raw, encoding, webhook.max_decompressed_bytes))
    except BodyError as exc:
        telemetry.reject(exc.reason)
        telemetry.request("http", exc.status)
        log.warning("webhook_batch", transport="http", status=exc.status, remote=request.remote,
                    encoding=encoding, reason=exc.reason, accepted=0, rejected=1,
                    error=exc.message)  # fmt: skip
        response = json_response({"error": exc.message}, exc.status)
        if exc.reason == "too_large":
            response.force_close()  # the rest of the body is not read
        return response
    telemetry.request("http", 200)
    answer = result.as_json()
    if guard is not None:
        guard.remember(digest, time.monotonic(), answer)
    # State and the log line are done right after the answer is written: Janus waits for it.
    fields = {
        "transport": "http",
        "bytes": len(raw),
        "encoding": encoding,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    asyncio.get_running_loop().call_soon(pipeline.after_answer, result, fields)
    return json_response(answer)


def _duplicate(
    request: web.Request, first: dict[str, object], size: int, encoding: str | None
) -> web.Response:
    """Answer a resent body as its first copy was answered (sampleevh ignores the answer,
    but a proxy or a person may not), without applying it again."""
    telemetry = request.app[TELEMETRY]
    telemetry.reject("duplicate_batch")
    telemetry.request("http", 200)
    log.warning("webhook_batch", transport="http", status=200, remote=request.remote,
                encoding=encoding, bytes=size, reason="duplicate_batch", accepted=0,
                rejected=0, error="the same body arrived within webhook.duplicate_window: "
                "a sampleevh retransmission, not applied again")  # fmt: skip
    return json_response({**first, "duplicate": True})
