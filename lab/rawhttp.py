"""HTTP over a bare socket: requests sent byte for byte, as no client library would write them
(non-UTF-8 header values, malformed lines), for the hostile-input tests and bench."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return orjson.loads(self.body)


async def raw_http(base: str, request: bytes, within: float = 30.0) -> RawAnswer:
    """Send bytes exactly as given (headers no client library would write) and read one
    answer: Content-Length bodies, or to the connection's close."""
    host, _, port = base.removeprefix("http://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), within)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), within)) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await asyncio.wait_for(
                reader.readexactly(int(headers["content-length"])), within
            )
        else:
            body = await asyncio.wait_for(reader.read(), within)
        return RawAnswer(int(status_line.split()[1]), headers, body)
    finally:
        writer.close()


def raw_post(path: str, body: bytes, *extra_headers: bytes) -> bytes:
    """A POST with the given header lines (bytes, any byte allowed) and the body."""
    head = b"".join(h + b"\r\n" for h in extra_headers)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()
        + head
        + b"\r\n"
        + body
    )
