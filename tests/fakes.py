"""The fakes tests share: a Janus Admin API in memory (for the poller) and one over HTTP that
answers with Janus 1.1.2's recorded replies (for the Admin client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

ADMIN = Path(__file__).parent / "fixtures" / "janus-1.1.2" / "admin"


@dataclass
class FakeClock:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


class FakePolling:
    """Stands in for ``monitor.polling.schedule.Polling`` where only its scope matters: which
    targets it polls, and which have finished a poll."""

    def __init__(self) -> None:
        self.targets: tuple[Any, ...] = ()
        self.completed: set[str] = set()

    def sync(self, targets: tuple[Any, ...]) -> None:
        self.targets = targets
        self.completed &= {t.name for t in targets}

    def polled_once(self, name: str) -> bool:
        return name in self.completed


class FakeAmqpQueue:
    """A shard queue for AmqpReceiver unit tests: consume hands out tags, cancel can fail
    (the connection dropped under it)."""

    def __init__(self, cancel_fails: bool = False) -> None:
        self.cancel_fails = cancel_fails
        self.consumers: dict[str, Any] = {}
        self.cancelled: list[str] = []

    async def consume(self, callback: Any) -> str:
        tag = f"ctag-{len(self.consumers) + len(self.cancelled)}"
        self.consumers[tag] = callback
        return tag

    async def cancel(self, tag: str) -> None:
        if self.cancel_fails:
            raise ConnectionError("connection lost")
        self.consumers.pop(tag)
        self.cancelled.append(tag)


class FakeAmqpMessage:
    """An incoming message: body, type, routing key; records how it was settled."""

    def __init__(self, body: bytes, type: str | None = None, routing_key: str = "") -> None:
        self.body = body
        self.type = type
        self.routing_key = routing_key
        self.settled: list[str] = []

    async def ack(self, multiple: bool = False) -> None:
        self.settled.append("ack through" if multiple else "ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("requeue" if requeue else "drop")
