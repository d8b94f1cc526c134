"""bench.raw_client: the lean client bench.replay times acks with reads real aiohttp answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from bench.raw_client import RawClientError, RawPoster


@pytest.fixture
def server() -> Iterator[int]:
    """An aiohttp server on its own thread: /echo answers the body's length as JSON, /stream
    answers chunked, /close hangs up without an answer."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"length": len(await request.read())})

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"{}")
        await response.write_eof()
        return response

    async def close(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/stream", stream)
    app.router.add_post("/close", close)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_bodies_of_any_size_are_answered_on_one_connection(server: int) -> None:
    """Three POSTs on one keep-alive connection, one of them 1 MB, each get their own answer."""
    poster = RawPoster("127.0.0.1", server, "/echo")
    try:
        for size in (0, 1_000_000, 17):
            assert poster.post_json(b"x" * size) == (200, {"length": size})
        assert poster.buffer == b""
    finally:
        poster.close()


def test_an_answer_it_cannot_read_is_an_error_not_a_wrong_figure(server: int) -> None:
    """A chunked answer, and a receiver that hangs up, raise RawClientError."""
    for path in ("/stream", "/close"):
        poster = RawPoster("127.0.0.1", server, path)
        try:
            with pytest.raises(RawClientError):
                poster.post(b"[]")
        finally:
            poster.close()
