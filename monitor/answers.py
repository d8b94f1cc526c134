"""JSON answers: every endpoint, and every error, speaks ``application/json``."""

from __future__ import annotations

import orjson
from aiohttp import web

from monitor.logs import loggable


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(body=orjson.dumps(payload), status=status, headers=all_headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": message}``; the message is made JSON-safe (aiohttp's can quote raw bytes)."""
    return json_response({"error": loggable(message)}, status, headers)
