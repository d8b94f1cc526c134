"""The baseline for ``bench.ingest``: aiohttp + orjson and nothing else.

``python -m bench.bare_receiver --port N`` answers ``POST /events`` by parsing the body with
``orjson.loads(await request.read())`` and replying 200 with a tiny JSON object, and
``GET /-/healthy`` for readiness polling. No access log, no state, no logging.
"""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

OK_BODY = b'{"ok":true}'


async def receive(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    return web.Response(body=OK_BODY, content_type="application/json")


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


def build_app(path: str = "/events") -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post(path, receive)
    app.router.add_get("/-/healthy", healthy)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/events")
    args = parser.parse_args(argv)
    web.run_app(build_app(args.path), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
