"""A lean HTTP/1.1 client for ack latency: a keep-alive POST over a blocking socket.

An ack timed through aiohttp's client includes that client's own work (request building,
response parsing, a few event-loop turns): about 0.4-0.6 ms on the 2 vCPU bench host, a
quarter of the 2 ms p99 budget, measured against the bare receiver in the same run. This
client sends one ``sendall`` and reads the answer with ``recv`` until its Content-Length is
in, so what it times is the receiver, loopback and the kernel.
"""

from __future__ import annotations

import socket

import orjson

MAX_HEAD = 16 * 1024


class RawClientError(Exception):
    """The receiver answered something this client does not read (or hung up)."""


class RawPoster:
    """One keep-alive connection that POSTs bodies to one path, one at a time."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nAccept: */*\r\nContent-Length: "
        ).encode()
        self.buffer = b""

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one body; its answer's status and body."""
        self.sock.sendall(b"".join((self.head, str(len(body)).encode(), b"\r\n\r\n", body)))
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RawClientError(f"a {value.strip().decode()} answer is not read here")
        if length is None:
            raise RawClientError("an answer without Content-Length")
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return status, rest[:length]

    def post_json(self, body: bytes) -> tuple[int, dict[str, object]]:
        status, answer = self.post(body)
        return status, orjson.loads(answer)

    def _fill(self) -> None:
        if len(self.buffer) > MAX_HEAD:
            raise RawClientError("an answer head longer than 16 KB")
        self.buffer += self._recv()

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RawClientError("the receiver closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()
