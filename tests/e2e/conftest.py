"""End-to-end fixtures: the daemon, a real Janus 1.1.2 wired to it, and aiortc participants.

The whole pytest process moves into a private network namespace (lab.netns) when this file is
loaded: ``pytest_configure`` runs while pytest imports it, before any test runs and before
pytest-asyncio or anything else has started a thread or an event loop. Only there does Janus
gather its ICE candidate on 127.0.0.1 (labj0); the namespace has no route anywhere else.
Unit tests collected in the same session then run inside the namespace too: they only use
127.0.0.1, which works the same there. When the namespace cannot be entered (not root,
unshare refused), the e2e tests fail under CI=true and are skipped elsewhere, with the reason.

Start order: the daemon first (so it takes Janus's ``started`` event), then Janus. Teardown
runs the other way: participants hang up, Janus stops, the daemon stops. A failing test gets
the Janus log tail and the events the daemon received attached to its report.

Settings are fixtures a test module (or ``pytest.mark.parametrize(..., indirect=True)``) can
override: ``janus_settings`` (JanusLabConfig fields) and ``daemon_settings`` (config sections
deep-merged into the daemon's YAML; the key ``target`` merges into the one target entry).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

import lab.janus
from lab.janus import JanusLabConfig, JanusProcess, file_tail, free_ports
from lab.netns import LAB_INTERFACE, LabNetns, LabNetnsError, enter_lab_netns, in_lab_netns
from monitor.state import Server
from tests.conftest import (
    Arrivals,
    Daemon,
    make_config,
    run_daemon,
    unavailable,
)
from tests.e2e.fleet import amqp_exchange, rabbit  # noqa: F401  (fixtures)

ROOM = 1234  # the lab's static room (lab.janus.DEFAULT_ROOMS): bitrate 256000, capped
SERVER_NAME = "janus-e2e"
ADMIN_SECRET = "e2e-admin-secret"
WEBHOOK_PATH = "/events"
EVENTUALLY_TIMEOUT = 10.0  # events arrive within milliseconds; stats every stats_period

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_NETNS = pytest.StashKey["LabNetns | LabNetnsError"]()
_LAB = pytest.StashKey["JanusLab"]()


# --- the network namespace --------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Enter the lab network namespace for the whole session, while pytest is single-threaded."""
    try:
        config.stash[_NETNS] = enter_lab_netns()
    except LabNetnsError as exc:
        config.stash[_NETNS] = exc


@pytest.fixture(scope="session")
def lab_netns(pytestconfig: pytest.Config) -> LabNetns:
    """The lab network namespace this session runs in (fails under CI=true, else skips)."""
    status = pytestconfig.stash.get(_NETNS, None)
    if status is None:
        status = LabNetnsError("tests/e2e/conftest.py was loaded without pytest_configure")
    if isinstance(status, LabNetnsError):
        unavailable(f"end-to-end tests need the lab network namespace: {status}")
        raise AssertionError("unreachable")  # pragma: no cover
    assert in_lab_netns(), f"no longer in the lab network namespace {status}"
    return status


@pytest.fixture(scope="session")
def janus_binary(lab_netns: LabNetns) -> str:
    """The janus executable (fails under CI=true, else skips, when Janus is not installed)."""
    return lab.janus.require_janus()


# --- what the daemon was handed, for checks and failure reports --------------------------------


# --- settings (override these fixtures to change them) ----------------------------------------


@pytest.fixture
def janus_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Extra JanusLabConfig fields for this test's Janus (none by default, or the indirect
    parametrization's)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def daemon_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Daemon config sections deep-merged into the generated YAML; ``target`` merges into the
    target entry (none by default, or the indirect parametrization's)."""
    return dict(getattr(request, "param", {}))


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def janus_config(janus_binary: str, janus_settings: dict[str, Any]) -> JanusLabConfig:
    """The Janus config of this test, on free ports; its event handler backend is filled in
    by janus_lab once the daemon listens."""
    http_port, admin_port, ws_port = free_ports(3)
    settings: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "admin_secret": ADMIN_SECRET,
        "http_port": http_port,
        "admin_port": admin_port,
        "ws_port": ws_port,
        "stats_period": 1,
        "ice_enforce_list": LAB_INTERFACE,
        "ignore_mdns": True,
        "evh_json": "compact",
        **janus_settings,
    }
    return JanusLabConfig(**settings)


@pytest.fixture
def daemon_config_dict(
    janus_config: JanusLabConfig, daemon_settings: dict[str, Any], tmp_path: Path
) -> dict[str, Any]:
    """The daemon's config (as the YAML mapping): one target named like Janus's server_name,
    with its Admin and Janus API URLs, polled every second."""
    target = {
        "name": janus_config.server_name,
        "admin_url": janus_config.admin_url,
        "admin_secret": janus_config.admin_secret,
        "janus_url": janus_config.janus_url,
        "poll_interval": "1s",
        "reconcile_interval": "3s",
    }
    extra = dict(daemon_settings)
    target = _merge(target, extra.pop("target", {}))
    base = {
        "webhook": {"path": WEBHOOK_PATH},
        "targets": [target],
        "remediation": {"audit_log": str(tmp_path / "actions.jsonl")},
    }
    return _merge(base, extra)


@pytest.fixture
async def daemon(lab_netns: LabNetns, daemon_config_dict: dict[str, Any]) -> AsyncIterator[Daemon]:
    """janus-monitor in-process on a free 127.0.0.1 port, configured for this test's Janus."""
    config = make_config(yaml.safe_dump(daemon_config_dict, sort_keys=False))
    async for running in run_daemon(config):
        yield running


# --- Janus ------------------------------------------------------------------------------------


@dataclass
class JanusLab:
    """A running Janus wired to the daemon, and what the checks need of both."""

    cfg: JanusLabConfig
    process: JanusProcess
    daemon: Daemon
    arrivals: Arrivals

    @property
    def name(self) -> str:
        return self.cfg.server_name

    @property
    def janus_url(self) -> str:
        return self.cfg.janus_url

    @property
    def server(self) -> Server:
        """The daemon's state of this Janus."""
        return self.daemon.runtime.state.servers[self.name]

    @property
    def log_path(self) -> Path | None:
        return self.process.log_path

    def log_tail(self, lines: int = 60) -> str:
        return file_tail(self.log_path, lines)

    async def samples(self) -> Samples:
        """The daemon's /metrics, parsed."""
        return await self.daemon.metrics()

    async def eventually(
        self,
        check: Callable[[], Awaitable[None]],
        what: str,
        within: float = EVENTUALLY_TIMEOUT,
    ) -> float:
        """Retry an asserting check until it passes; returns how long that took. On timeout
        the last failure is raised with the events the daemon received meanwhile."""
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
                        f"events received since this step began: {self.arrivals.events[mark:]}"
                    ) from exc
            await asyncio.sleep(0.05)


@pytest.fixture
async def janus_lab(
    request: pytest.FixtureRequest,
    janus_binary: str,
    janus_config: JanusLabConfig,
    daemon: Daemon,
    tmp_path: Path,
) -> AsyncIterator[JanusLab]:
    """Janus 1.1.2 in the lab namespace, sampleevh POSTing to the daemon; yielded once the
    daemon has its ``started`` event. Stopped at teardown."""
    cfg = dataclasses.replace(janus_config, evh_backend=daemon.url(WEBHOOK_PATH))
    conf = tmp_path / "janus-conf"
    lab.janus.write_janus_config(conf, cfg)
    process = JanusProcess(cfg, binary=janus_binary)
    arrivals = Arrivals()
    arrivals.spy_on(daemon)
    the_lab = JanusLab(cfg, process, daemon, arrivals)
    request.node.stash[_LAB] = the_lab
    try:
        # In a thread: the daemon shares this event loop and must take the startup events.
        await asyncio.to_thread(process.start, conf, tmp_path / "janus.log")

        async def started() -> None:
            assert the_lab.server.running is True, "no core started event yet"

        await the_lab.eventually(started, "Janus's started event at the daemon")
        yield the_lab
    finally:
        await asyncio.to_thread(process.stop)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:  # pragma: no cover - only on failures
    """A failed e2e test's report gets the Janus log tail and what the daemon received."""
    report = yield
    the_lab = item.stash.get(_LAB, None)
    if the_lab is not None and report.failed:
        report.sections.append((f"Janus log tail ({the_lab.log_path})", the_lab.log_tail(80)))
        events = the_lab.arrivals.events
        report.sections.append(
            (f"events the daemon received ({len(events)})", "\n".join(events[-300:]))
        )
    return report


# --- participants -----------------------------------------------------------------------------


class PublishFactory(Protocol):
    async def __call__(
        self,
        display: str,
        *,
        room: int = ROOM,
        opaque_id: str | None = None,
        **options: Any,
    ) -> Any: ...


class SubscribeFactory(Protocol):
    async def __call__(
        self,
        feeds: Sequence[int],
        *,
        room: int = ROOM,
        opaque_id: str | None = None,
        **options: Any,
    ) -> Any: ...


def _require_aiortc() -> None:
    """aiortc is a test dependency: missing, it fails under CI=true and skips elsewhere."""
    try:
        import aiortc  # noqa: F401
    except ImportError as exc:
        unavailable(f"aiortc is not installed (pip install -e '.[test]'): {exc}")


async def _close_all(participants: list[Any]) -> None:
    errors = []
    for participant in reversed(participants):
        try:
            await participant.close()
        except Exception as exc:
            errors.append(f"{participant.role} {participant.opaque_id}: {exc!r}")
    assert not errors, f"participants did not close cleanly: {errors}"


@pytest.fixture
async def publish(janus_lab: JanusLab) -> AsyncIterator[PublishFactory]:
    """``await publish("alice")``: a lab.webrtc.Publisher in room 1234 (``room=`` to change),
    publishing VP8 + Opus, returned after ``webrtcup``; opaque_id defaults to
    ``e2e-<display>``, other keywords go to Publisher. Closed at teardown (after subscribers)."""
    _require_aiortc()
    from lab.webrtc import Publisher

    started: list[Any] = []

    async def factory(
        display: str, *, room: int = ROOM, opaque_id: str | None = None, **options: Any
    ) -> Publisher:
        publisher = Publisher(
            janus_lab.janus_url,
            room,
            display,
            opaque_id=opaque_id or f"e2e-{display}",
            **options,
        )
        started.append(publisher)
        return await publisher.start()

    yield factory
    await _close_all(started)


@pytest.fixture
async def subscribe(
    janus_lab: JanusLab, publish: PublishFactory
) -> AsyncIterator[SubscribeFactory]:
    """``await subscribe([alice.id, bob.id])``: a lab.webrtc.Subscriber to those feeds in room
    1234, returned once ``webrtcup`` came and frames arrive on every track; opaque_id defaults
    to ``e2e-viewer-<n>``. Closed at teardown, before the publishers."""
    _require_aiortc()
    from lab.webrtc import Subscriber

    started: list[Any] = []

    async def factory(
        feeds: Sequence[int], *, room: int = ROOM, opaque_id: str | None = None, **options: Any
    ) -> Subscriber:
        subscriber = Subscriber(
            janus_lab.janus_url,
            room,
            feeds,
            opaque_id=opaque_id or f"e2e-viewer-{len(started) + 1}",
            **options,
        )
        started.append(subscriber)
        return await subscriber.start()

    yield factory
    await _close_all(started)


@pytest.fixture
async def chromium(janus_lab: JanusLab) -> AsyncIterator[Any]:
    """A headless Chromium (lab.chromium) in the lab namespace; missing, it fails under
    CI=true and skips elsewhere."""
    from lab.chromium import Chromium, chromium_binary

    binary = chromium_binary()
    if binary is None:
        unavailable("chromium is not installed (make test installs it as root)")
    browser = await Chromium(binary or "").start()
    try:
        yield browser
    finally:
        await browser.close()
