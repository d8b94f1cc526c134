"""Shared test helpers: the Janus 1.1.2 fixtures, config builders, a clock, a running daemon."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from monitor.app import Runtime, build_runtime, start
from monitor.config import Config, Secret, parse_config
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.decode.records import TYPE_LABELS, Event
from monitor.janus.admin import AdminClient, RequestRecord
from monitor.logs import configure_logging
from tests.fakes import FakeAdminServer, FakeClock, serve_fake_admin

FIXTURES = Path(__file__).parent / "fixtures" / "janus-1.1.2"
EVENTS = FIXTURES / "events"
ADMIN = FIXTURES / "admin"
IN_CI = os.environ.get("CI") == "true"


def scenarios() -> list[str]:
    return sorted(p.name for p in EVENTS.iterdir() if p.is_dir())


def body_paths(scenario: str) -> list[Path]:
    """The POST bodies Janus sent in one scenario, in arrival order (decoded .json copies)."""
    return sorted((EVENTS / scenario).glob("[0-9]*.json"))


def bodies(scenario: str) -> list[bytes]:
    return [p.read_bytes() for p in body_paths(scenario)]


def items_of(path: Path) -> list[dict[str, Any]]:
    parsed = json.loads(path.read_bytes())
    return parsed if isinstance(parsed, list) else [parsed]


def events_of(scenario: str, upto: str | None = None) -> list[Event]:
    """Decoded events of a scenario, up to and including the body file named ``upto``."""
    out: list[Event] = []
    notes = DecodeNotes()
    for path in body_paths(scenario):
        out.extend(decode_event(item, notes) for item in items_of(path))
        if upto is not None and path.stem == upto:
            break
    return out


def make_config(yaml_text: str = "", **env: str) -> Config:
    return parse_config(yaml_text, env=env)


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse a /metrics rendering into {(sample name, labels): value}."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def unavailable(message: str) -> None:
    """A missing dependency fails under CI=true and skips elsewhere."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """Path of an external tool (see ``unavailable``)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (make test installs it as root)")
        raise AssertionError("unreachable")  # pragma: no cover
    return path


@pytest.fixture(autouse=True)
def keep_logging_config() -> Iterator[None]:
    """A config (re)load reconfigures structlog for the whole process; put it back afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


class _NotATty(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def capture_daemon_logs(
    monkeypatch: pytest.MonkeyPatch, level: str = "debug", fmt: str = "json"
) -> io.BytesIO:
    """What the daemon's own logging writes to stdout, rendered as in production (JSON lines
    unless ``fmt`` says console). A reload that keeps log.format json keeps writing here, which
    structlog.testing.capture_logs would not survive (a reload reconfigures structlog)."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", _NotATty(raw, encoding="utf-8", write_through=True))
    configure_logging(level, fmt)
    return raw


def log_lines(raw: io.BytesIO) -> list[dict[str, Any]]:
    """The JSON lines captured so far, parsed."""
    return [json.loads(line) for line in raw.getvalue().splitlines() if line.startswith(b"{")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Daemon:
    """A daemon serving on a free port, with a client session pointed at it."""

    runtime: Runtime
    base: str
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return self.base + path

    async def post_events(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        path = self.runtime.config.webhook.path
        async with self.http.post(self.url(path), data=body, headers=headers or {}) as response:
            return response.status, await response.json(), response.headers

    async def get_json(self, path: str) -> Any:
        async with self.http.get(self.url(path)) as response:
            assert response.status == 200, path
            assert response.content_type == "application/json"
            return await response.json()

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        async with self.http.get(self.url("/metrics")) as response:
            assert response.status == 200
            return metric_samples(await response.text())


async def run_daemon(config: Config, config_path: Path | None = None) -> AsyncIterator[Daemon]:
    runtime = build_runtime(config, config_path)
    runner = await start(runtime, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    # auto_decompress=False: the tests send Content-Encoding bodies exactly as Janus does.
    # A bounded client: a request the daemon never answers fails its test within a minute,
    # naming the request, instead of waiting out aiohttp's 5 minutes.
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as http:
        try:
            yield Daemon(runtime, f"http://{host}:{port}", http)
        finally:
            await runner.cleanup()


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    """A daemon with one target, janus-lab-1 (the fixtures' emitter), and default settings."""
    async for running in run_daemon(make_config("targets: [{name: janus-lab-1}]")):
        yield running


# --- what a daemon was handed and what it counted: checks shared by the real-Janus tests -------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def event_summary(item: Any) -> str:
    """``type:what`` of one raw event as Janus sent it, e.g. ``plugin:joined``,
    ``webrtc:ice=connected``, ``jsep:remote-offer``, ``media:stats``."""
    if not isinstance(item, dict):
        return f"<{type(item).__name__}>"
    label = TYPE_LABELS.get(item.get("type", 0), str(item.get("type")))
    body = item.get("event") if isinstance(item.get("event"), dict) else {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    jsep = body.get("jsep") if isinstance(body.get("jsep"), dict) else {}
    name: Any
    if jsep:
        name = f"{body.get('owner')}-{jsep.get('type')}"
    elif "bytes-received" in body:
        name = "stats"
    else:
        name = body.get("name") or body.get("status") or data.get("event") or data.get("videoroom")
        for key in ("ice", "dtls", "connection", "receiving"):
            if name is None and key in body:
                name = f"{key}={body[key]}"
        for key in ("local-candidate", "remote-candidate", "selected-pair"):
            if name is None and key in body:
                name = key
    return f"{label}:{name}"


@dataclass
class Arrivals:
    """Every event the daemon was handed, in order, as ``type:name``."""

    events: list[str] = field(default_factory=list)

    def since(self, mark: int) -> list[str]:
        return self.events[mark:]

    def spy_on(self, daemon: Daemon) -> None:
        pipeline = daemon.runtime.pipeline
        ingest_body = pipeline.ingest_body

        def recording(data: bytes | str) -> Any:
            result = ingest_body(data)  # first: a body it refuses raises before it is recorded
            parsed = json.loads(data)
            items = parsed if isinstance(parsed, list) else [parsed]
            self.events.extend(event_summary(item) for item in items)
            return result

        pipeline.ingest_body = recording  # type: ignore[method-assign]


def received(samples: Samples, name: str) -> dict[str, float]:
    """janus_monitor_events_received_total of one server, by type."""
    metric = "janus_monitor_events_received_total"
    return {
        labels["type"]: samples[(metric, frozenset(labels.items()))]
        for labels in series(samples, metric)
        if labels["server"] == name
    }


def publisher_info(samples: Samples, name: str) -> set[tuple[str, str, str]]:
    """(room, publisher, display) of every janus_videoroom_publisher_info series of a server."""
    return {
        (labels["room"], labels["publisher"], labels["display"])
        for labels in series(samples, "janus_videoroom_publisher_info")
        if labels["server"] == name
    }


def publishing(samples: Samples, name: str) -> dict[str, float]:
    """publisher id -> janus_videoroom_publisher_publishing, for one server."""
    metric = "janus_videoroom_publisher_publishing"
    return {
        labels["publisher"]: samples[(metric, frozenset(labels.items()))]
        for labels in series(samples, metric)
        if labels["server"] == name
    }


# --- counters and memory of a daemon under hostile input --------------------------------------

REJECTED = "janus_monitor_events_rejected_total"


def rejected(samples: Samples) -> dict[str, float]:
    """janus_monitor_events_rejected_total by reason."""
    return {
        labels["reason"]: samples[(REJECTED, frozenset(labels.items()))]
        for labels in series(samples, REJECTED)
    }


def rejected_delta(before: Samples, after: Samples) -> dict[str, float]:
    """The reasons whose rejected counter moved, and by how much."""
    old, new = rejected(before), rejected(after)
    moved = {reason: value - old.get(reason, 0.0) for reason, value in new.items()}
    return {reason: delta for reason, delta in moved.items() if delta}


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 2.0) -> bool:
    """Poll an async condition briefly; for effects the server records after it answered."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def rejections_moved(daemon: Daemon, before: Samples) -> bool:
    return bool(rejected_delta(before, await daemon.metrics()))


def vm_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- an Admin client on the fake Admin API over HTTP (tests of monitor.janus.admin) ----------

SECRET = 'fake-admin-sëcret-"7f3a"'  # non-ASCII and a quote: it must survive JSON both ways


@pytest.fixture
async def fake() -> AsyncIterator[FakeAdminServer]:
    async with serve_fake_admin(SECRET) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class Client:
    """An AdminClient on the fake, with every RequestRecord its observer was given."""

    admin: AdminClient
    records: list[RequestRecord]


def make_client(
    http: aiohttp.ClientSession,
    url: str,
    secret: str = SECRET,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Client:
    records: list[RequestRecord] = []
    admin = AdminClient(
        http, url, Secret(secret), timeout=timeout, clock=clock, observer=records.append
    )
    return Client(admin, records)


@pytest.fixture
def client(http: aiohttp.ClientSession, fake: FakeAdminServer) -> Client:
    return make_client(http, fake.url)
