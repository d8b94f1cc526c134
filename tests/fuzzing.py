"""The fuzz suite's harness: one real daemon per module on a loop of its own, driven over
HTTP and WebSocket from synchronous hypothesis tests, and the checks every answer must pass.

``FUZZ_EXAMPLES`` sets the examples of a weight-1 test (``make fuzz`` sets it high; the small
default keeps ``make test`` quick). The oracle of a batch is ``decode_event`` on each item: the
decoder's own property test (tests/test_events_property.py) proves it raises only DecodeError.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

from lab.rawhttp import RawAnswer, raw_http
from monitor import logs
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeError, DecodeNotes
from monitor.ingest.body import MAX_ITEMS, MAX_VALUES
from monitor.ingest.ws import SUBPROTOCOL
from monitor.logs import configure_logging
from monitor.telemetry import REJECT_REASONS
from tests.conftest import (
    Daemon,
    make_config,
    metric_samples,
    rejected,
    reset_peak_rss,
    run_daemon,
    vm_bytes,
)

SERVER = "janus-lab-1"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
ROUND = 1000  # examples per hypothesis run (see ``fuzz``)

# Small limits keep the state the fuzzers fill (random sessions, handles, rooms) to a few MB,
# so that memory can be bounded whatever the case count; resends are off (window 0s), or every
# repeated body would be a duplicate_batch.
FUZZ_CONFIG = f"""
targets: [{{name: {SERVER}}}]
webhook: {{duplicate_window: 0s, max_decompressed_bytes: 16777216}}
limits: {{max_tracked_handles: 1000, max_tracked_sessions: 1000, max_tracked_rooms: 500,
          max_tracked_publishers: 1000}}
"""

# RSS bounds over a module's run, in bytes (test and daemon share the process). Peak: refusing
# a 16 MiB gzip bomb holds the inflated 16 MiB and an accepted body near that size is joined
# once more (2 x 16 MiB), an 8 MiB raw body is read in chunks and joined (2 x 8 MiB), parsing
# is bounded to about 50 MB (monitor.ingest.body), and one hypothesis round holds about 45 MB:
# about 180 MB all told, so 192 MiB (make fuzz measured 128 MiB). Settled, after free memory
# is handed back (malloc_trim): the state is capped by FUZZ_CONFIG's limits (a few MB), a
# hypothesis round's memory is freed when it ends, but the allocator may keep the pages of
# the largest parse (about 50 MB) and of one round: 128 MiB (make fuzz measured a plateau of
# 108 to 115 MiB after the huge arrays, flat over the tests after them). A leak of 1 KB per
# case would pass it within the 100 k cases.
PEAK_GROWTH = 192 << 20
SETTLED_GROWTH = 128 << 20


def trimmed_rss() -> int:
    """VmRSS once the C heap has handed its free pages back (glibc malloc_trim)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return vm_bytes("VmRSS")


STATUS_REASONS = {
    400: {"malformed_json", "bad_body", "bad_compression"},
    401: {"unauthorized"},
    413: {"too_large", "decompressed_too_large"},
    415: {"unsupported_encoding"},
}
BODY_REASONS = frozenset().union(*(STATUS_REASONS[s] for s in (400, 413, 415)))
ITEM_REASONS = {"invalid_event", "unknown_emitter_limit"}

T = TypeVar("T")


def fuzz(
    case: Callable[..., None],
    *strategies: SearchStrategy[Any],
    weight: float = 1.0,
    least: int = 1,
) -> int:
    """Run ``case`` on ``weight`` x FUZZ_EXAMPLES examples (at least ``least``) drawn from
    ``strategies``, in rounds of at most ROUND: hypothesis keeps about 40 KB per example it
    has run until its run ends, which would otherwise hide the daemon's RSS behind its own.
    No deadline (a shared 2-CPU machine), no example database, no health checks on slow
    generation. Returns the examples asked for."""
    total = max(least, round(EXAMPLES * weight))
    for done in range(0, total, ROUND):
        run = settings(
            max_examples=min(ROUND, total - done),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        run(given(*strategies)(case))()
    return total


@dataclass
class Reply:
    """What an endpoint answered: a status (WebSocket: the one counted) and the JSON body."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Expect:
    """What a body should get: ``items`` (a 200 for this batch) or one refusal of ``reasons``."""

    items: list[Any] | None = None
    reasons: frozenset[str] = BODY_REASONS


def expect_body(payload: bytes) -> Expect:
    """The verdict on an uncompressed body, from JSON alone (not from monitor.ingest.body)."""
    big = {"too_large"} if len(payload) > MAX_VALUES else set()  # the value bound, unparsed
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Expect(reasons=frozenset({"malformed_json", *big}))
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return Expect(reasons=frozenset({"bad_body", *big}))
    if len(parsed) > MAX_ITEMS:
        return Expect(reasons=frozenset({"too_large"}))
    return Expect(items=parsed, reasons=frozenset(big))


def decoded(items: list[Any]) -> tuple[set[int], int]:
    """(indexes of the items the decoder refuses, how many it accepts from janus-lab-1)."""
    invalid: set[int] = set()
    ours = 0
    for index, item in enumerate(items):
        try:
            event = decode_event(item, DecodeNotes())
        except DecodeError:
            invalid.add(index)
        else:
            ours += event.emitter == SERVER
    return invalid, ours


def check_items(answer: dict[str, Any], delta: dict[str, int], received: int,
                items: list[Any], answered: bool = True) -> None:  # fmt: skip
    """A batch taken: every item accepted or rejected, the decoder's refusals counted
    invalid_event, the rest of the rejected unknown_emitter_limit, and each accepted item of
    janus-lab-1 committed (counted received)."""
    accepted, rejected_items = answer["accepted"], answer["rejected"]
    assert accepted + rejected_items == len(items), answer
    invalid, ours = decoded(items)
    assert set(delta) <= ITEM_REASONS, delta
    assert delta.get("invalid_event", 0) == len(invalid), (delta, invalid)
    assert delta.get("unknown_emitter_limit", 0) == rejected_items - len(invalid), delta
    assert received == ours, (received, ours)
    errors = answer.get("errors", [])
    assert len(errors) == (min(rejected_items, 10) if answered else 0), answer
    for error in errors:
        assert isinstance(error["error"], str) and error["error"], answer
        assert error["index"] in invalid or error["error"].startswith("too many emitters"), error


class Served:
    """A daemon on its own event loop; every call runs the loop until the answer is in."""

    def __init__(self, loop: asyncio.AbstractEventLoop, daemon: Daemon) -> None:
        self.loop = loop
        self.daemon = daemon
        self.telemetry = daemon.runtime.telemetry
        self.errors: list[str] = []  # error-level log events: a 500 or a traceback
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.rss_start = vm_bytes("VmRSS")
        self.peak_tracked = reset_peak_rss()  # else VmHWM is the peak of earlier tests too

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def count_errors(self, _logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if method in ("error", "exception", "critical") and len(self.errors) < 100:
            self.errors.append(str(event.get("event")))
        return event

    def snapshot(self) -> tuple[dict[str, int], dict[tuple[str, int], int], int]:
        received = sum(n for (name, _), n in self.telemetry.events_received.items()
                       if name == SERVER)  # fmt: skip
        return (dict(self.telemetry.events_rejected), dict(self.telemetry.webhook_requests),
                received)  # fmt: skip

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        async def send() -> Reply:
            url = self.daemon.url(self.daemon.runtime.config.webhook.path)
            async with self.daemon.http.post(url, data=body, headers=headers or {}) as answer:
                text = await answer.read()
                await asyncio.sleep(0)  # the commit, called soon after the answer
                assert answer.content_type == "application/json", (answer.status, text[:200])
                return Reply(answer.status, orjson.loads(text), dict(answer.headers))

        return self.run(send())

    def raw(self, request: bytes) -> Reply:
        """Bytes exactly as given, on a connection of their own (lab.rawhttp)."""
        answer: RawAnswer = self.run(raw_http(self.daemon.base, request))
        return Reply(answer.status, answer.json(), answer.headers)

    def ws_send(self, data: str | bytes, opcode: aiohttp.WSMsgType | None = None) -> Reply | None:
        """One frame on the open socket (opened again if the daemon closed it); the answer,
        or None when the daemon closed the socket instead (a frame not UTF-8, too big)."""

        async def send() -> Reply | None:
            before = dict(self.telemetry.webhook_requests)
            if self.ws is None or self.ws.closed:
                url = self.daemon.url(self.daemon.runtime.config.webhook.path)
                self.ws = await self.daemon.http.ws_connect(url, protocols=(SUBPROTOCOL,))
            raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
            try:
                if opcode is not None:
                    await self.ws.send_frame(raw, opcode)
                elif isinstance(data, str):
                    await self.ws.send_str(data)
                else:
                    await self.ws.send_bytes(data)
                message = await self.ws.receive(timeout=10)
            except ConnectionError:  # closed by the daemon while the frame was on its way
                message = aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
                await self.ws.close()
                self.ws = None
            for _ in range(1000):  # a close is counted once the handler has seen the error
                requests = self.telemetry.webhook_requests
                moved = [k for k, n in requests.items() if n != before.get(k)]
                if moved:
                    break
                await asyncio.sleep(0.001)
            assert len(moved) == 1 and moved[0][0] == "ws", moved
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return Reply(moved[0][1], None)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            return Reply(moved[0][1], orjson.loads(message.data))

        return self.run(send())

    def check(self, reply: Reply | None, before: Any, expect: Expect, transport: str) -> None:
        """No 5xx; a refusal is JSON {"error": str} counted once under a reason its status
        allows; a 200 counts every item as accepted or rejected, and commits the accepted."""
        assert reply is not None
        old_rejected, old_requests, old_received = before
        new_rejected, new_requests, new_received = self.snapshot()
        delta = {r: n - old_rejected.get(r, 0) for r, n in new_rejected.items()}
        delta = {r: n for r, n in delta.items() if n}
        assert reply.status < 500, reply
        key = (transport, reply.status)
        assert new_requests.get(key, 0) - old_requests.get(key, 0) == 1, (key, new_requests)
        if reply.status != 200:
            if reply.body is not None:  # None: a WebSocket the daemon closed
                assert isinstance(reply.body, dict) and set(reply.body) == {"error"}, reply
                assert isinstance(reply.body["error"], str) and reply.body["error"], reply
            (reason,) = delta
            assert delta[reason] == 1 and reason in STATUS_REASONS[reply.status], (reply, delta)
            assert reason in expect.reasons, (reply, delta)
            return
        assert expect.items is not None, (reply, "expected a refusal")
        check_items(reply.body, delta, new_received - old_received, expect.items)

    def still_serves(self) -> None:
        """Every endpoint still answers 200 JSON (or metrics that parse, with the same
        rejection counts as the telemetry), no error was logged, and RSS stayed bounded."""

        async def endpoints() -> None:
            async with self.daemon.http.get(self.daemon.url("/-/healthy")) as answer:
                assert answer.status == 200
            for path in ("/api/v1/servers", "/api/v1/rooms", "/api/v1/publishers"):
                async with self.daemon.http.get(self.daemon.url(path)) as answer:
                    assert answer.status == 200, path
                    assert isinstance(await answer.json(), dict), path
            async with self.daemon.http.get(self.daemon.url("/metrics")) as answer:
                assert answer.status == 200
                samples = metric_samples(await answer.text())
            assert rejected(samples) == {r: float(n) for r, n in
                                         self.telemetry.events_rejected.items()}  # fmt: skip

        self.run(endpoints())
        assert not self.errors, self.errors
        assert self.telemetry.events_rejected["internal_error"] == 0
        assert set(self.telemetry.events_rejected) == set(REJECT_REASONS)
        grown = trimmed_rss() - self.rss_start
        peak = vm_bytes("VmHWM") - self.rss_start if self.peak_tracked else 0
        print(f"fuzz memory: VmRSS +{grown >> 20} MiB, peak +{peak >> 20} MiB")  # for -s runs
        assert grown < SETTLED_GROWTH, f"VmRSS grew by {grown >> 20} MiB"
        if self.peak_tracked:
            reset_peak_rss()  # each test's peak on its own
            assert peak < PEAK_GROWTH, f"peak RSS grew by {peak >> 20} MiB"


@contextmanager
def serving(yaml_text: str = FUZZ_CONFIG) -> Iterator[Served]:
    """A daemon for a whole module: JSON logs at warning (each refusal is one line, written by
    the renderer a real deployment uses), error-level lines recorded."""
    loop = asyncio.new_event_loop()
    saved, threshold = structlog.get_config(), logs._threshold  # put back for other modules
    configure_logging("warning", "json")
    running = run_daemon(make_config(yaml_text))
    served = Served(loop, loop.run_until_complete(running.__anext__()))
    config = structlog.get_config()
    structlog.configure(processors=[served.count_errors, *config["processors"]])
    try:
        yield served
    finally:
        if served.ws is not None:
            loop.run_until_complete(served.ws.close())
        loop.run_until_complete(running.aclose())
        loop.close()
        structlog.configure(**saved)
        logs._threshold = threshold
