"""Shared test helpers: the Janus 1.1.2 fixtures, config builders, a clock, a running daemon."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.app import Runtime, build_runtime, start
from monitor.config import Config, parse_config
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.decode.records import TYPE_LABELS, Event

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


def require_tool(name: str) -> str:
    """Path of an external tool; a missing one fails under CI=true and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class FakeClock:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def keep_logging_config() -> Iterator[None]:
    """A config (re)load reconfigures structlog for the whole process; put it back afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


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
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        try:
            yield Daemon(runtime, f"http://{host}:{port}", http)
        finally:
            await runner.cleanup()


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    """A daemon with one target, janus-lab-1 (the fixtures' emitter), and default settings."""
    async for running in run_daemon(make_config("targets: [{name: janus-lab-1}]")):
        yield running


class FakeAdmin:
    """A Janus Admin API in memory, answering like AdminClient with 1.1.2-shaped replies.

    ``handles`` maps (session, handle) to the handle_info ``info`` object it returns; tests
    build Janus's view there and ``cost`` seconds pass on ``clock`` per request.
    """

    def __init__(
        self,
        clock: FakeClock,
        cost: float = 0.001,
        observer: Callable[[str, float, float, str | None], None] | None = None,
    ) -> None:
        from monitor.janus.errors import JanusRequestError, JanusUnavailable, PluginError

        self.observer = observer  # like AdminClient's: (request, started, duration, error)
        self.errors = (JanusRequestError, JanusUnavailable, PluginError)
        self.clock = clock
        self.cost = cost
        self.down = False
        self.info_reply = json.loads((ADMIN / "10-media" / "013-admin-info.json").read_text())[
            "response"
        ]
        self.sessions: dict[int, set[int]] = {}
        self.handles: dict[tuple[int, int], dict[str, Any]] = {}
        self.rooms: dict[int, dict[str, Any]] = {}
        self.participants: dict[int, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, Any]] = []

    # Janus's side, as tests set it up
    def add_handle(self, session: int, handle: int, info: dict[str, Any] | None = None) -> None:
        self.sessions.setdefault(session, set()).add(handle)
        base = {"session_id": session, "handle_id": handle, "plugin": "janus.plugin.videoroom",
                "plugin_specific": {"hangingup": 0, "destroyed": 0}}  # fmt: skip
        self.handles[(session, handle)] = {**base, **(info or {})}

    def add_room(self, room: int, bitrate: int = 0, publishers: int = 3) -> None:
        listed = json.loads((ADMIN / "10-media" / "019-message_plugin-list.json").read_text())
        entry = dict(listed["response"]["response"]["list"][0])
        entry.update(room=room, bitrate=bitrate, max_publishers=publishers, num_participants=0)
        self.rooms[room] = entry
        self.participants.setdefault(room, [])

    # AdminClient's interface
    def _call(self, label: str, arg: Any = None) -> None:
        self.calls.append((label, arg))
        started = self.clock.now
        self.clock.advance(self.cost)
        if self.observer is not None:
            self.observer(label, started, self.cost, "unavailable" if self.down else None)
        if self.down:
            raise self.errors[1](label, "connection refused")

    async def info(self) -> dict[str, Any]:
        self._call("info")
        return dict(self.info_reply)

    async def list_sessions(self) -> list[int]:
        self._call("list_sessions")
        return sorted(self.sessions)

    async def list_handles(self, session_id: int) -> list[int]:
        self._call("list_handles", session_id)
        if session_id not in self.sessions:
            raise self.errors[0]("list_handles", "No such session", code=458)
        return sorted(self.sessions[session_id])

    async def handle_info(
        self, session_id: int, handle_id: int, *, plugin_only: bool = False
    ) -> dict[str, Any]:
        self._call("handle_info" if not plugin_only else "handle_info:plugin_only", handle_id)
        if session_id not in self.sessions:
            raise self.errors[0]("handle_info", "No such session", code=458)
        if (session_id, handle_id) not in self.handles:
            raise self.errors[0]("handle_info", "No such handle", code=459)
        info = dict(self.handles[(session_id, handle_id)])
        if plugin_only:
            info.pop("webrtc", None)
        return info

    async def message_plugin(self, plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        self._call(f"message_plugin:{body['request']}", body.get("room"))
        if body["request"] == "list":
            for room, entry in self.rooms.items():
                entry["num_participants"] = len(self.participants.get(room, []))
            return {"videoroom": "success", "list": list(self.rooms.values())}
        room = body["room"]
        if room not in self.rooms:
            raise self.errors[2]("message_plugin:listparticipants", "No such room", code=426)
        return {"videoroom": "participants", "room": room,
                "participants": list(self.participants[room])}  # fmt: skip


def fake_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """An asyncio.sleep stand-in that moves the fake clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


# --- a fake Admin API over HTTP, answering with Janus 1.1.2's recorded replies -----------------

ADMIN_MEDIA = ADMIN / "10-media"
ADMIN_VERB_FIXTURES = {
    "info": "013-admin-info.json",
    "ping": "014-admin-ping.json",
    "get_status": "015-admin-get_status.json",
    "list_sessions": "001-list_sessions.json",
    "list_handles": "002-list_handles-3647527005210999.json",
}
ADMIN_PLUGIN_FIXTURES = {
    "list": "019-message_plugin-list.json",
    "listparticipants": "020-message_plugin-listparticipants.json",
    "kick": "022-message_plugin-kick-wrong-secret.json",
}
HANDLE_INFO_FULL = "003-handle_info-pub-4725100285792786.json"
HANDLE_INFO_PLUGIN_ONLY = "006-handle_info-pub-plugin_only.json"
WRONG_SECRET_REPLY = "018-admin-list_sessions-wrong-admin_secret.json"


def admin_fixture(name: str) -> dict[str, Any]:
    """One recorded exchange: {"url", "request", "http_status", "response"}."""
    loaded: dict[str, Any] = json.loads((ADMIN_MEDIA / name).read_bytes())
    return loaded


def recorded_reply(name: str, transaction: str) -> dict[str, Any]:
    """The real reply of a fixture, answering the given transaction."""
    return {**admin_fixture(name)["response"], "transaction": transaction}


def fixture_response(name: str) -> dict[str, Any]:
    """The reply a fixture recorded, with its own transaction left out (for comparisons)."""
    return {k: v for k, v in admin_fixture(name)["response"].items() if k != "transaction"}


Reply = dict[str, Any] | web.StreamResponse | None
"""What a reply function returns: a JSON object to send, a ready response, or None to hang."""


@dataclass
class TickClock:
    """A clock that moves only when told to (the fake moves it while it serves)."""

    now: float = 500.0

    def __call__(self) -> float:
        return self.now


class FakeAdminServer:
    """An Admin API on 127.0.0.1 that answers like Janus 1.1.2 did in the 10-media capture.

    Like Janus, every verb except info and ping needs the right admin_secret (else the real
    403 reply). ``reply`` can be replaced to answer something else; a reply function that
    returns None makes the server hang until the test ends.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.clock: TickClock | None = None
        self.clock_step = 0.0
        self.reply: Callable[[dict[str, Any]], Reply] = self.janus_reply
        self.release = asyncio.Event()

    def janus_reply(self, body: dict[str, Any]) -> Reply:
        verb, transaction = body["janus"], body["transaction"]
        if verb not in ("info", "ping") and body.get("admin_secret") != self.secret:
            return recorded_reply(WRONG_SECRET_REPLY, transaction)
        if verb == "message_plugin":
            return recorded_reply(ADMIN_PLUGIN_FIXTURES[body["request"]["request"]], transaction)
        if verb == "handle_info":
            name = HANDLE_INFO_PLUGIN_ONLY if body.get("plugin_only") else HANDLE_INFO_FULL
            return recorded_reply(name, transaction)
        return recorded_reply(ADMIN_VERB_FIXTURES[verb], transaction)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = orjson.loads(await request.read())
            self.received.append(body)
            self.paths.append(request.path)
            if self.clock is not None:
                self.clock.now += self.clock_step
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.reply(body)
            if answer is None:
                await self.release.wait()
                return web.Response(status=503)
            if isinstance(answer, web.StreamResponse):
                return answer
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def serve_fake_admin(secret: str) -> AsyncIterator[FakeAdminServer]:
    """A FakeAdminServer listening on 127.0.0.1 (its ``url`` is the admin_url to use)."""
    server = FakeAdminServer(secret)
    app = web.Application()
    app.router.add_post("/admin", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}/admin"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


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
        ingest = pipeline.ingest

        def recording(items: list[Any]) -> Any:
            self.events.extend(event_summary(item) for item in items)
            return ingest(items)

        pipeline.ingest = recording  # type: ignore[method-assign]


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
