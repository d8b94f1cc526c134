"""Security: webhook credentials are required when configured and compared in constant time;
size limits hold on every endpoint (bodies, WebSocket frames, request lines, headers), each
refusal a 4xx, never a 5xx, and the daemon keeps serving.

"Every endpoint" is read from the app's own routes (monitor.app.add_routes), so an endpoint
added later is swept too.
"""

from __future__ import annotations

import base64
import hmac
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lab.rawhttp import raw_http
from monitor.app import MAX_HEADERS, add_routes
from monitor.config import BasicAuth, Secret, load_config
from monitor.ingest import auth
from tests.conftest import Daemon, run_daemon

USER, PASSWORD = "evh-user", "evh-pässword-1c9e"
CONFIG = f"""
webhook: {{path: /events, basic_auth: {{username: {USER}, password: "{PASSWORD}"}},
           max_body_bytes: 65536}}
targets: [{{name: janus-lab-1}}]
"""
EXPECTED = BasicAuth(USER, Secret(PASSWORD))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def guarded(tmp_path: Path) -> Any:
    """A daemon requiring Basic credentials, with a 64 KiB body limit and a config file (so
    /-/reload answers 200)."""
    path = tmp_path / "janus-monitor.yml"
    path.write_text(CONFIG)
    async for daemon in run_daemon(load_config(path), path):
        yield daemon


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route the daemon serves, parameters filled in."""
    app = web.Application()
    add_routes(app, "/events")
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.resource.canonical if route.resource else "/")
        found.add((route.method, path))
    return sorted(found)


ROUTES = routes()


async def healthy(daemon: Daemon) -> None:
    async with daemon.http.get(daemon.url("/-/healthy")) as response:
        assert response.status == 200


# --- webhook credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        basic(USER, PASSWORD + "x"),
        basic(USER, PASSWORD[:-1]),
        basic(USER.upper(), PASSWORD),
        basic("", PASSWORD),
        basic(USER, ""),
        "Basic " + base64.b64encode(PASSWORD.encode()).decode(),
        "Basic not-base64!",
        "Bearer " + PASSWORD,
    ],
    ids=[
        "none",
        "longer",
        "shorter",
        "user-case",
        "no-user",
        "no-password",
        "no-colon",
        "bad-base64",
        "bearer",
    ],
)
async def test_webhook_refuses_missing_or_wrong_credentials(
    guarded: Daemon, header: str | None
) -> None:
    """POST and the WebSocket upgrade both answer 401 with WWW-Authenticate; nothing applied."""
    headers = {} if header is None else {"Authorization": header}
    status, answer, sent = await guarded.post_events(b'[{"type": 1}]', headers)
    assert status == 401 and "error" in answer
    assert sent["WWW-Authenticate"].startswith("Basic ")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await guarded.http.ws_connect(guarded.url("/events"), headers=headers,
                                      protocols=("janus-event-handlers",))  # fmt: skip
    assert refused.value.status == 401
    status, answer, _ = await guarded.post_events(b"[]", {"Authorization": basic(USER, PASSWORD)})
    assert status == 200


def test_credentials_are_compared_once_over_the_whole_pair_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever is wrong (user, password, length, case), the verdict is hmac.compare_digest's
    over the whole ``user:password``: no early ``==`` on either part decides before it."""
    calls: list[tuple[bytes, bytes]] = []
    verdict = {"value": False}

    def spy(given: bytes, wanted: bytes) -> bool:
        calls.append((given, wanted))
        return verdict["value"]

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong = [("x", PASSWORD), (USER, "x"), (USER, PASSWORD * 3), (USER.upper(), PASSWORD)]
    for user, password in [*wrong, (USER, PASSWORD)]:
        calls.clear()
        verdict["value"] = False
        assert auth.authorized(basic(user, password), EXPECTED) is False
        assert calls == [(f"{user}:{password}".encode(), f"{USER}:{PASSWORD}".encode())]
        verdict["value"] = True  # the comparison alone decides: a "match" lets it through
        assert auth.authorized(basic(user, password), EXPECTED) is True
    monkeypatch.undo()
    assert auth.authorized(basic(USER, PASSWORD), EXPECTED) is True
    assert not any(auth.authorized(basic(u, p), EXPECTED) for u, p in wrong)


# --- size limits --------------------------------------------------------------------------------


def test_the_sweep_covers_the_documented_endpoints() -> None:
    """The routes read from the app include every SPEC endpoint."""
    paths = {path for _, path in ROUTES}
    assert {"/events", "/metrics", "/-/healthy", "/-/ready", "/-/reload", "/api/v1/servers",
            "/api/v1/rooms", "/api/v1/publishers", "/api/v1/actions", "/api/v1/publishers/1/1/1",
            "/"} <= paths  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize(
    "oversized",
    ["request-line", "header-value", "many-headers"],
)
async def test_oversized_requests_are_refused_with_a_4xx(
    guarded: Daemon, method: str, path: str, oversized: str
) -> None:
    """A 100 KB request line, a 100 KB header, or more than MAX_HEADERS headers: a 4xx JSON
    error on every route, and the daemon keeps serving."""
    head = f"{method} {path}"
    extra = b""
    if oversized == "request-line":
        head += "?q=" + "a" * 100_000
    elif oversized == "header-value":
        extra = b"X-Big: " + b"b" * 100_000 + b"\r\n"
    else:
        extra = b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 1000) for i in range(MAX_HEADERS + 1))
    request = (
        f"{head} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n".encode() + extra + b"\r\n"
    )
    answer = await raw_http(guarded.base, request)
    assert 400 <= answer.status < 500, (answer.status, answer.body[:200])
    assert "error" in answer.json()
    await healthy(guarded)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_a_large_body_is_refused_or_left_unread_on_every_route(
    guarded: Daemon, method: str, path: str
) -> None:
    """A 1 MiB body (64 KiB is the webhook's limit): 413 on the webhook, 401 without
    credentials, and never a 5xx on any route."""
    body = b"[" + b"{}," * (1024 * 1024 // 3) + b"{}]"
    for headers in ({}, {"Authorization": basic(USER, PASSWORD)}):
        async with guarded.http.request(
            method, guarded.url(path), data=body, headers=headers
        ) as response:
            status = response.status
        assert status < 500, (method, path, status)
        if (method, path) == ("POST", "/events"):
            assert status == (413 if headers else 401)
    await healthy(guarded)


async def test_a_websocket_frame_over_the_limit_closes_the_socket(guarded: Daemon) -> None:
    """A text frame over max_body_bytes closes the socket with 1009; the daemon keeps serving."""
    async with guarded.http.ws_connect(
        guarded.url("/events"),
        headers={"Authorization": basic(USER, PASSWORD)},
        protocols=("janus-event-handlers",),
    ) as socket:
        await socket.send_str("[" + "{}," * 40_000 + "{}]")
        message = await socket.receive(timeout=30)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert socket.close_code == 1009
    await healthy(guarded)
