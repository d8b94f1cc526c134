"""Fuzzing webhook.basic_auth: any Authorization header (missing, random, near misses of the
right one, bytes that are not UTF-8) on the webhook and on the WebSocket upgrade; only the
exact credentials get in, every other is a counted 401 JSON with a challenge."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

import pytest
from hypothesis import strategies as st

from lab.rawhttp import raw_post
from monitor.ingest.ws import SUBPROTOCOL
from tests.fuzz_strategies import header_values, template_bytes
from tests.fuzzing import FUZZ_CONFIG, Expect, Served, expect_body, fuzz, serving

USER, PASSWORD = "janus", "sëcret:with colon"  # a colon and non-ASCII: both must survive
CREDENTIALS = f"{USER}:{PASSWORD}".encode()
RIGHT = base64.b64encode(CREDENTIALS).decode()
BODY = template_bytes()[0]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    config = FUZZ_CONFIG.replace(
        "webhook: {", f"webhook: {{basic_auth: {{username: {USER}, password: '{PASSWORD}'}}, "
    )
    with serving(config) as running:
        assert running.daemon.runtime.config.webhook.basic_auth is not None
        yield running


def lets_in(header: bytes | None) -> bool:
    """RFC 7617: scheme `Basic` in any case, then base64 of exactly user:password."""
    if header is None:
        return False
    scheme, _, token = header.strip(b" \t").partition(b" ")
    try:
        return scheme.lower() == b"basic" and base64.b64decode(token.strip(), validate=True) == (
            CREDENTIALS
        )
    except (binascii.Error, ValueError):
        return False


@st.composite
def authorizations(draw: st.DrawFn) -> bytes | None:
    """No header, the right one in another case, a near miss, random credentials or bytes."""
    kind = draw(st.sampled_from(["none", "right", "near", "random-creds", "random-bytes"]))
    if kind == "none":
        return None
    if kind == "right":
        return draw(st.sampled_from([b"Basic ", b"basic ", b"BASIC  "])) + RIGHT.encode()
    if kind == "random-bytes":
        return draw(header_values(60))
    if kind == "random-creds":
        user, password = draw(st.text(max_size=12)), draw(st.text(max_size=12))
        creds = f"{user}:{password}".encode("utf-8", "surrogatepass")
        return b"Basic " + base64.b64encode(creds)
    token = bytearray(RIGHT.encode())
    at = draw(st.integers(0, len(token) - 1))
    change = draw(st.sampled_from(["flip", "drop", "pad", "scheme", "urlsafe", "latin1"]))
    if change == "flip":
        token[at] = draw(st.sampled_from(b"ABCxyz019+/="))
    elif change == "drop":
        del token[at]
    elif change == "pad":
        token += b"="
    elif change == "urlsafe":
        token = bytearray(base64.urlsafe_b64encode(CREDENTIALS))
    elif change == "latin1":  # the same password, sent in Latin-1 rather than UTF-8
        token = bytearray(base64.b64encode(CREDENTIALS.decode().encode("latin-1")))
    scheme = b"Bearer " if change == "scheme" else b"Basic "
    return scheme + bytes(token)


def refused_check(served: Served, reply_status: int, body: object, headers: dict[str, str],
                  before: tuple[dict[str, int], object, int], transport: str) -> None:  # fmt: skip
    rejected = served.telemetry.events_rejected
    assert reply_status == 401 and isinstance(body, dict) and isinstance(body["error"], str)
    assert headers["www-authenticate"].startswith("Basic realm=")
    assert rejected["unauthorized"] - before[0]["unauthorized"] == 1
    assert sum(rejected.values()) - sum(before[0].values()) == 1
    key = (transport, 401)
    assert served.telemetry.webhook_requests[key] - before[1].get(key, 0) == 1  # type: ignore[attr-defined]


def test_webhook_credentials(served: Served) -> None:
    """A POST gets in with exactly the right credentials (its items counted); any other
    Authorization, or none, is 401 JSON, with a challenge, counted unauthorized."""

    def case(header: bytes | None) -> None:
        extra = [b"Authorization: " + header] if header is not None else []
        before = served.snapshot()
        reply = served.raw(raw_post("/events", BODY, *extra))
        if lets_in(header):
            served.check(reply, before, expect_body(BODY), "http")
        else:
            refused_check(served, reply.status, reply.body, reply.headers, before, "http")

    fuzz(case, authorizations(), weight=0.5)
    served.still_serves()


def test_websocket_credentials(served: Served) -> None:
    """The WebSocket upgrade is judged the same way before the handshake: 101 and a socket
    that answers with the right credentials, a counted 401 JSON with any other."""

    def case(header: bytes | None) -> None:
        extra = [b"Authorization: " + header] if header is not None else []
        key = base64.b64encode(b"0123456789abcdef")
        request = (
            b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + SUBPROTOCOL.encode()
            + b"\r\nSec-WebSocket-Key: " + key + b"\r\n"
            + b"".join(h + b"\r\n" for h in extra) + b"\r\n"
        )  # fmt: skip
        before = served.snapshot()
        if lets_in(header):
            served.run(upgrade_ok(served, request))
        else:
            reply = served.raw(request)
            refused_check(served, reply.status, reply.body, reply.headers, before, "ws")

    fuzz(case, authorizations(), weight=0.2)
    served.still_serves()


async def upgrade_ok(served: Served, request: bytes) -> None:
    import asyncio

    host, _, port = served.daemon.base.removeprefix("http://").rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
    finally:
        writer.close()


def test_a_wrong_password_is_not_a_body_problem(served: Served) -> None:
    """Credentials are checked before the body is read: a wrong password on a body that is
    not JSON is 401 unauthorized, not 400 malformed_json."""
    before = served.snapshot()
    wrong = b"Authorization: Basic " + base64.b64encode(b"janus:nope")
    reply = served.raw(raw_post("/events", b"\xff{", wrong))
    refused_check(served, reply.status, reply.body, reply.headers, before, "http")
    assert Expect().items is None
