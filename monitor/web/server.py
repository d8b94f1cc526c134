"""The HTTP server, with one error shape: every answer aiohttp makes itself comes back as JSON.

aiohttp answers some requests before any handler runs (a malformed request line or header, no
route, a wrong method, a bad ``Expect``) or after one crashed, in plain text. Clients of this
daemon (Janus, scripts, Prometheus) get ``{"error": "..."}`` from its own handlers, so these
get the same, and each is logged as one structlog line instead of aiohttp's traceback.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from monitor.answers import error_response

log = structlog.get_logger("monitor.http")

_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return exc
    message = exc.reason
    allowed = exc.headers.get("Allow")
    if exc.status == 405 and allowed:
        message = f"{exc.reason}: use {allowed}"
    elif exc.text and exc.text != f"{exc.status}: {exc.reason}":
        message = exc.text
    headers = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
    return error_response(exc.status, message, headers)


class _JsonErrorHandler(RequestHandler):
    """One connection: errors aiohttp answers itself (bad HTTP, a crashed handler) as JSON."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("answer already started; cannot send the error")
        if status >= 500:
            log.error("http_error", status=status, remote=request.remote, path=request.path,
                      exc_info=exc)  # fmt: skip
            text = "internal error" if status == 500 else "request timed out"
        else:
            text = message or "bad request"
            log.warning("http_refused", status=status, remote=request.remote, error=text)
        response = error_response(status, text)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


def _json_errors(handler: Any) -> Any:
    async def answer(request: BaseRequest) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:  # no route, wrong method, bad Expect, raised 4xx
            return _from_http_exception(exc)
        except UnicodeEncodeError:
            # aiohttp quoting a non-UTF-8 header byte into its own error text (an Expect of
            # 0xff) fails before any handler runs: the request, not the daemon, is at fault.
            log.warning("http_refused", status=400, remote=request.remote,
                        error="a request header is not valid text")  # fmt: skip
            return error_response(400, "a request header is not valid text")
        return response

    return answer


class JsonErrorRunner(web.AppRunner):
    """An AppRunner whose server answers its own errors as JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same state, a handler class that speaks JSON
        server.request_handler = _json_errors(server.request_handler)
        return server
