"""A daemon and a real Janus 1.1.2 wired to it, for the event-delivery tests: the daemon
in-process and restartable on the same port, the Janus API through the daemon's own client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import lab.janus
from lab.janus import (
    JanusLabConfig,
    JanusProcess,
    free_ports,
)
from monitor.app import build_runtime, start
from monitor.config import Config, Secret
from monitor.janus.api import JanusClient
from monitor.state import Handle, Server
from tests.conftest import (
    Arrivals,
    Daemon,
    make_config,
)

WEBHOOK_PATH = "/events"
VIDEOROOM = "janus.plugin.videoroom"
POLL_TIMEOUT = 5.0  # events arrive within milliseconds; this only bounds a failing wait
EVH_USER = "janus-evh"
EVH_PASSWORD = "e2e-evh-pässword"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# --- the daemon, in-process, restartable on the same port ---------------------------------------


@dataclass
class Serving:
    """The daemon listening on 127.0.0.1:port, with a client session, until ``stop()``."""

    daemon: Daemon
    runner: web.AppRunner

    @classmethod
    async def start(cls, config: Config, port: int) -> Serving:
        runtime = build_runtime(config)
        runner = await start(runtime, "127.0.0.1", port)
        http = aiohttp.ClientSession()
        return cls(Daemon(runtime, f"http://127.0.0.1:{port}", http), runner)

    async def stop(self) -> None:
        await self.daemon.http.close()
        await self.runner.cleanup()


# --- the Janus API: the daemon's own client, plus the long poll it does not do --------------


class JanusApi:
    """The daemon's JanusClient for requests; async plugin answers are long-polled here (the
    daemon never reads a session's event queue)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.client = JanusClient(http, url, Secret())

    async def create_session(self) -> int:
        return await self.client.create_session()

    async def attach(self, session: int, opaque_id: str) -> int:
        return await self.client.attach(session, VIDEOROOM, opaque_id=opaque_id)

    async def sync_message(self, session: int, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A VideoRoom request answered at once (create, destroy): its plugin data."""
        return await self.client.message(session, handle, body)

    async def async_message(
        self, session: int, handle: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A VideoRoom request acked first (join, configure, leave): the plugin data of its
        event, long-polled from the session's queue (other events there are skipped)."""
        transaction = await self.client.message_async(session, handle, body)
        for _ in range(10):
            async with self.http.get(f"{self.url}/{session}?maxev=5") as response:
                polled = await response.json(content_type=None)
            for event in polled if isinstance(polled, list) else [polled]:
                if event.get("transaction") == transaction:
                    data: dict[str, Any] = event["plugindata"]["data"]
                    assert "error" not in data, f"{body} -> {data}"
                    return data
        raise AssertionError(f"no answer to {body} in session {session}'s event queue")

    async def detach(self, session: int, handle: int) -> None:
        await self.client.detach(session, handle)

    async def destroy(self, session: int) -> None:
        await self.client.destroy(session)


# --- one lab: a daemon and a Janus wired to it ------------------------------------------------


@dataclass
class Lab:
    name: str
    config: Config
    port: int
    serving: Serving
    janus: JanusProcess
    api: JanusApi
    arrivals: Arrivals

    @property
    def daemon(self) -> Daemon:
        return self.serving.daemon

    @property
    def server(self) -> Server:
        return self.daemon.runtime.state.servers[self.name]

    def handle(self, session: int, handle: int) -> Handle | None:
        return self.server.handle((session, handle))

    async def samples(self) -> Samples:
        return await self.daemon.metrics()

    async def stop_daemon(self) -> None:
        await self.serving.stop()

    async def start_daemon(self) -> None:
        """A new daemon (fresh state) on the same port, after stop_daemon()."""
        self.serving = await Serving.start(self.config, self.port)
        self.arrivals.spy_on(self.daemon)

    async def eventually(
        self, check: Callable[[], Awaitable[None]], what: str, within: float = POLL_TIMEOUT
    ) -> float:
        """Retry an asserting check until it passes; returns how long that took. On timeout
        the last failure is raised with the events received so far (janus_lab adds the Janus
        log tail)."""
        started = time.monotonic()
        mark = len(self.arrivals.events)
        while True:
            try:
                await check()
                return time.monotonic() - started
            except AssertionError as exc:
                if time.monotonic() - started > within:
                    raise AssertionError(
                        f"{what}: still failing after {within:.1f}s: {exc}\n"
                        f"events received ({len(self.arrivals.events)}): {self.arrivals.events}\n"
                        f"since this step began: {self.arrivals.since(mark)}"
                    ) from exc
            await asyncio.sleep(0.02)


@asynccontextmanager
async def janus_lab(
    tmp_path: Path, name: str, daemon_config: str, **janus_settings: Any
) -> AsyncIterator[Lab]:
    """The daemon on a free port, then Janus (free ports) with ``janus_settings``, whose
    ``{daemon}`` placeholders in evh_backend / evh_ws_backend become the daemon's host:port.
    Janus is always stopped first, then the daemon. Whatever fails inside the block gets the
    Janus log tail (as it was at the failure) as an exception note."""
    binary = lab.janus.require_janus()
    daemon_port, http_port, admin_port, ws_port = free_ports(4)
    for key in ("evh_backend", "evh_ws_backend"):
        if key in janus_settings:
            janus_settings[key] = janus_settings[key].format(daemon=f"127.0.0.1:{daemon_port}")
    cfg = JanusLabConfig(
        server_name=name,
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
        **janus_settings,
    )
    lab.janus.write_janus_config(tmp_path / "conf", cfg)
    config = make_config(daemon_config)
    janus = JanusProcess(cfg, binary=binary)
    arrivals = Arrivals()
    serving = await Serving.start(config, daemon_port)
    arrivals.spy_on(serving.daemon)
    http = aiohttp.ClientSession()
    the_lab = Lab(
        name, config, daemon_port, serving, janus, JanusApi(cfg.janus_url, http), arrivals
    )
    try:
        # In a thread: the daemon shares this event loop and must take the startup events.
        await asyncio.to_thread(janus.start, tmp_path / "conf", tmp_path / "janus.log")
        yield the_lab
    except Exception as exc:
        exc.add_note(f"Janus log tail ({janus.log_path}):\n{janus.log_tail(40)}")
        raise
    finally:
        try:
            await asyncio.to_thread(janus.stop)
        finally:
            await http.close()
            await the_lab.serving.stop()


def janus_log(lab: Lab) -> str:
    assert lab.janus.log_path is not None
    return lab.janus.log_path.read_text(encoding="utf-8", errors="replace")


def daemon_yaml(name: str, basic_auth: bool = False) -> str:
    lines = [f"webhook: {{path: {WEBHOOK_PATH}}}", f"targets: [{{name: {name}}}]"]
    if basic_auth:
        lines[0] = (
            f"webhook: {{path: {WEBHOOK_PATH}, basic_auth: "
            f'{{username: {EVH_USER}, password: "{EVH_PASSWORD}"}}}}'
        )
    return "\n".join(lines) + "\n"
