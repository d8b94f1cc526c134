"""Operator endpoints: health, readiness, reload, the JSON API, the landing page."""

from __future__ import annotations

import asyncio
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, load_config
from monitor.metrics.exposition import render_now
from monitor.web.endpoints import pieces
from tests.conftest import Daemon, body_paths, make_config, run_daemon, sample
from tests.fakes import serve_fake_admin

SERVER = "janus-lab-1"
RELOAD_OK = "janus_monitor_config_last_reload_successful"
ADMIN_SECRET = "adm1n-s3cret-reload-5e7"


async def get(daemon: Daemon, path: str) -> tuple[int, str, str]:
    async with daemon.http.get(daemon.url(path)) as response:
        return response.status, response.content_type, await response.text()


async def reload(daemon: Daemon) -> tuple[int, Any]:
    async with daemon.http.post(daemon.url("/-/reload")) as response:
        return response.status, await response.json()


async def test_healthy(daemon: Daemon) -> None:
    """/-/healthy answers 200 while the process serves."""
    status, _, text = await get(daemon, "/-/healthy")
    assert status == 200
    assert text.strip() == "OK"


async def test_ready_follows_the_gates(daemon: Daemon) -> None:
    """/-/ready is 200 with config loaded, 503 naming any registered gate until it clears."""
    assert (await get(daemon, "/-/ready"))[0] == 200
    daemon.runtime.readiness.wait_for("first poll of janus-lab-1")
    status, _, text = await get(daemon, "/-/ready")
    assert status == 503
    assert "first poll of janus-lab-1" in text
    daemon.runtime.readiness.passed("first poll of janus-lab-1")
    assert (await get(daemon, "/-/ready"))[0] == 200


def _config_text(*targets: str, extra: str = "") -> str:
    lines = ["targets:"]
    for name in targets:
        lines += [f"  - name: {name}", f'    admin_secret: "{ADMIN_SECRET}"{extra}']
    return "\n".join(lines) + "\n"


async def test_reload_applies_a_valid_edit_and_keeps_serving_on_an_invalid_one(
    tmp_path: Path,
) -> None:
    """POST /-/reload applies a valid edit; an invalid one answers 500 with the ConfigError
    message, sets last_reload_successful to 0 and leaves the running config in place."""
    path = tmp_path / "janus-monitor.yml"
    path.write_text(_config_text(SERVER))
    async for daemon in run_daemon(load_config(path), path):
        path.write_text(_config_text(SERVER, "janus-lab-2"))
        assert await reload(daemon) == (200, {"status": "reloaded"})
        servers = (await daemon.get_json("/api/v1/servers"))["servers"]
        assert {s["name"]: s["configured"] for s in servers} == {SERVER: True, "janus-lab-2": True}
        assert sample(await daemon.metrics(), RELOAD_OK) == 1

        path.write_text(_config_text(SERVER, extra="\n    pol_interval: 5s"))
        with pytest.raises(ConfigError) as expected:
            load_config(path)
        status, answer = await reload(daemon)
        assert (status, answer) == (500, {"error": str(expected.value)})
        assert "pol_interval" in answer["error"]
        assert ADMIN_SECRET not in answer["error"]
        assert sample(await daemon.metrics(), RELOAD_OK) == 0
        assert [t.name for t in daemon.runtime.config.targets] == [SERVER, "janus-lab-2"]
        servers = (await daemon.get_json("/api/v1/servers"))["servers"]
        assert {s["name"]: s["configured"] for s in servers} == {SERVER: True, "janus-lab-2": True}
        status, answer, _ = await daemon.post_events(body_paths("10-media")[0].read_bytes())
        assert (status, answer) == (200, {"accepted": 1, "rejected": 0})

        path.write_text(_config_text(SERVER))
        async with daemon.http.put(daemon.url("/-/reload")) as response:
            assert response.status == 200
        assert sample(await daemon.metrics(), RELOAD_OK) == 1
        servers = (await daemon.get_json("/api/v1/servers"))["servers"]
        assert {s["name"]: s["configured"] for s in servers} == {SERVER: True, "janus-lab-2": False}


async def test_reload_without_a_config_file_is_500(daemon: Daemon) -> None:
    """A daemon started without a config file cannot reload and says so."""
    status, answer = await reload(daemon)
    assert status == 500
    assert answer == {"error": "no config file to reload"}


async def _post_media_upto_00033(daemon: Daemon) -> None:
    for path in body_paths("10-media"):
        if path.stem > "00033":
            break
        status, answer, _ = await daemon.post_events(path.read_bytes())
        assert status == 200
        assert answer["rejected"] == 0


async def test_api_shows_the_room_publisher_and_subscriber(daemon: Daemon) -> None:
    """After 10-media up to 00033 the API shows room 4321 with alice publishing to 1 subscriber."""
    await _post_media_upto_00033(daemon)
    servers = (await daemon.get_json("/api/v1/servers"))["servers"]
    assert len(servers) == 1
    server = servers[0]
    assert (server["name"], server["configured"]) == (SERVER, True)
    assert (server["rooms"], server["publishers"], server["subscribers"]) == (1, 1, 1)

    rooms = (await daemon.get_json("/api/v1/rooms"))["rooms"]
    assert len(rooms) == 1
    room = rooms[0]
    assert (room["server"], room["room"]) == (SERVER, "4321")
    assert room["publishers"] == ["2244074596607377"]
    assert room["subscribers"] == 1

    publishers = (await daemon.get_json("/api/v1/publishers"))["publishers"]
    assert len(publishers) == 1
    publisher = publishers[0]
    assert (publisher["server"], publisher["room"], publisher["publisher"]) == (
        SERVER,
        "4321",
        "2244074596607377",
    )
    assert publisher["display"] == "alice"
    assert publisher["publishing"] is True
    assert publisher["subscribers"] == 1
    assert publisher["opaque_id"] == "lab-publisher-1"


def stable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API entries without the fields that change with the clock."""
    return [{k: v for k, v in entry.items() if k != "last_event_age_seconds"} for entry in entries]


@pytest.mark.parametrize("endpoint", ["servers", "rooms", "publishers"])
async def test_api_server_filter(daemon: Daemon, endpoint: str) -> None:
    """?server= keeps only that server's entries; an unknown server gives an empty list."""
    await _post_media_upto_00033(daemon)
    everything = stable((await daemon.get_json(f"/api/v1/{endpoint}"))[endpoint])
    assert everything
    only = stable((await daemon.get_json(f"/api/v1/{endpoint}?server={SERVER}"))[endpoint])
    assert only == everything
    assert (await daemon.get_json(f"/api/v1/{endpoint}?server=janus-other"))[endpoint] == []


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if tag == "a" and name == "href" and value]


async def test_landing_page_links_metrics_and_api(daemon: Daemon) -> None:
    """/ is an HTML page linking /metrics and the JSON API, and every link it has works."""
    status, content_type, page = await get(daemon, "/")
    assert status == 200
    assert content_type == "text/html"
    links = _Links()
    links.feed(page)
    assert {"/metrics", "/api/v1/servers", "/api/v1/rooms", "/api/v1/publishers"} <= set(
        links.hrefs
    )
    for href in links.hrefs:
        assert (await get(daemon, href))[0] == 200, href


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v2/servers", "/-/nope"])
async def test_unknown_paths_are_404(daemon: Daemon, path: str) -> None:
    """Paths the daemon does not serve answer 404."""
    assert (await get(daemon, path))[0] == 404


async def wait_for(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_ready_waits_for_the_first_poll_and_polls_feed_metrics() -> None:
    """/-/ready is 503 until every target was polled once; then the poll's facts are exported."""
    async with serve_fake_admin("s3cret") as fake:
        fake.delay = 0.3
        config = make_config(
            f"targets: [{{name: {SERVER}, admin_url: '{fake.url}', admin_secret: s3cret, "
            "poll_interval: 1s, reconcile_interval: 5s}]"
        )
        async for daemon in run_daemon(config):
            status, _, text = await get(daemon, "/-/ready")
            assert status == 503 and f"first poll of {SERVER}" in text

            async def ready(daemon: Daemon = daemon) -> bool:
                return (await get(daemon, "/-/ready"))[0] == 200

            await wait_for(ready)
            m = await daemon.metrics()
            assert sample(m, "janus_up", server=SERVER) == 1
            assert sample(m, "janus_info", server=SERVER, version="1.1.2",
                          server_name="janus-lab-1") == 1  # fmt: skip
            assert sample(m, "janus_public_ip_configured", server=SERVER) == 0
            cap = "janus_videoroom_room_bitrate_cap_bits_per_second"
            assert sample(m, cap, server=SERVER, room="1234") == 256000
            assert sample(m, "janus_videoroom_room_max_publishers", server=SERVER, room="4321") == 4
            assert sample(m, "janus_monitor_admin_requests_total", server=SERVER, request="info")
            assert fake.received[0]["admin_secret"] == "s3cret"


async def test_an_unreachable_target_is_down_and_the_daemon_keeps_serving() -> None:
    """With the Admin API unreachable, janus_up is 0, errors are counted, and /-/ready is 200."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = make_config(
        f"targets: [{{name: {SERVER}, admin_url: 'http://127.0.0.1:{port}/admin', "
        "poll_interval: 1s}]"
    )
    async for daemon in run_daemon(config):

        async def polled(daemon: Daemon = daemon) -> bool:
            return (await get(daemon, "/-/ready"))[0] == 200

        await wait_for(polled)
        m = await daemon.metrics()
        assert sample(m, "janus_up", server=SERVER) == 0
        assert sample(m, "janus_monitor_poll_errors_total", server=SERVER, request="info") >= 1
        status, _ = await reload(daemon)  # still serving the rest
        assert status == 500  # no config file: but it answered


async def test_a_reload_that_changes_listen_says_it_needs_a_restart(tmp_path: Path) -> None:
    """The new listen address is not applied live: the answer and the running config say so."""
    path = tmp_path / "janus-monitor.yml"
    path.write_text(f"listen: 127.0.0.1:9720\ntargets: [{{name: {SERVER}}}]\n")
    async for daemon in run_daemon(load_config(path), path):
        path.write_text(f"listen: 127.0.0.1:9731\ntargets: [{{name: {SERVER}}}]\n")
        status, answer = await reload(daemon)
        assert (status, answer) == (200, {"status": "reloaded", "needs_restart": ["listen"]})
        assert daemon.runtime.config.listen == "127.0.0.1:9720"


async def test_a_reload_that_changes_amqp_keeps_the_running_broker_settings(tmp_path: Path) -> None:
    """The broker connection is bound at startup: a changed amqp block waits for a restart,
    and the answer says so."""
    path = tmp_path / "janus-monitor.yml"
    base = f"targets: [{{name: {SERVER}}}]\nlisten: 127.0.0.1:9720\n"
    path.write_text(base + "amqp: {url: 'amqp://127.0.0.1:1', shards: 2}\n")
    async for daemon in run_daemon(load_config(path), path):
        path.write_text(base + "amqp: {url: 'amqp://127.0.0.1:1', shards: 4}\n")
        status, answer = await reload(daemon)
        assert (status, answer) == (200, {"status": "reloaded", "needs_restart": ["amqp"]})
        assert daemon.runtime.config.amqp is not None
        assert daemon.runtime.config.amqp.shards == 2


async def test_metrics_is_sent_in_pieces_that_add_up_to_the_rendering(daemon: Daemon) -> None:
    """GET /metrics streams the rendering with its exact Content-Length; HEAD sends no body."""
    for path in body_paths("10-media"):
        await daemon.post_events(path.read_bytes())
    async with daemon.http.get(daemon.url("/metrics")) as response:
        body = await response.read()
        assert response.status == 200 and response.content_type == "text/plain"
        assert response.content_length == len(body) > 10_000
    state_lines = [line for line in render_now(daemon.runtime.collectors).splitlines()
                   if line.startswith((b"janus_monitor_tracked", b"janus_videoroom"))]  # fmt: skip
    assert len(state_lines) > 5 and set(state_lines) <= set(body.splitlines())
    async with daemon.http.head(daemon.url("/metrics")) as response:
        assert response.status == 200 and await response.read() == b""


def test_pieces_join_small_chunks_and_keep_every_byte() -> None:
    """Chunks are joined into pieces of at least the size (the last may be smaller), in order."""
    chunks = [bytes([n % 256]) * (n * 37 % 5000) for n in range(400)]
    out = list(pieces(chunks, 16_384))
    assert b"".join(out) == b"".join(chunks)
    assert all(len(piece) >= 16_384 for piece in out[:-1])
    assert list(pieces([], 16_384)) == []
