"""Real WebRTC participants for a lab Janus: a Janus API client and aiortc publisher/subscriber.

Everything stays on 127.0.0.1 and needs the lab network namespace (lab.netns): Janus offers
its one candidate there on labj0, and the aiortc side here is set up to match:

- aioice gathers host candidates on 127.0.0.1 only (it skips that address by default):
  ``aioice.ice.get_host_addresses`` is replaced when this module is imported;
- no STUN or TURN server (aiortc would add a public one by default), one bundled transport;
- every ``a=candidate`` of Janus's SDP that is not 127.x is removed before it is applied.

Publishing is non-trickle: aiortc puts its candidates in the offer, then ``trickle
{completed: true}``, as the client exchanges in tests/fixtures/janus-1.1.2/client/10-media::

    async with Publisher(cfg.janus_url, room=1234, display="alice") as alice:   # webrtcup
        async with Subscriber(cfg.janus_url, room=1234, feeds=[alice.id]) as viewer:
            ...                                        # frames are arriving on every track

The publisher sends VP8 (a moving pattern with a noise block, so the encoder works at its
floor of about 250 kbps or what REMB allows above it) and Opus silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import VideoFrame

from lab.netns import LAB_ADDRESS

__all__ = [
    "VIDEOROOM",
    "JanusError",
    "JanusHandle",
    "JanusSession",
    "MovingNoiseTrack",
    "Publisher",
    "Subscriber",
    "loopback_only",
    "peer_connection",
    "use_loopback_ice",
]

VIDEOROOM: Final = "janus.plugin.videoroom"
LONG_POLL_SECONDS: Final = 30  # Janus answers an idle long poll with a keepalive after 30 s
DEFAULT_TIMEOUT: Final = 15.0

JSON = dict[str, Any]


# --------------------------------------------------------------------------- loopback ICE


def _loopback_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    """aioice's host addresses in the lab: 127.0.0.1 only (on labj0 and lo alike)."""
    return [LAB_ADDRESS] if use_ipv4 else []


def use_loopback_ice() -> None:
    """Make aioice gather its host candidate on 127.0.0.1 only; idempotent, process-wide."""
    aioice.ice.get_host_addresses = _loopback_host_addresses


use_loopback_ice()


def peer_connection() -> RTCPeerConnection:
    """An RTCPeerConnection with no STUN/TURN server and max-bundle (one transport)."""
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def without_candidates(sdp: str) -> str:
    """sdp with no ``a=candidate`` line at all: the peer will not check any of them."""
    kept = [line for line in sdp.splitlines() if not line.startswith("a=candidate:")]
    return "\r\n".join(kept) + "\r\n"


def rewrite_candidates(sdp: str, rewrite: Callable[[list[str]], list[str]]) -> str:
    """sdp with each ``a=candidate`` line's fields passed through ``rewrite``."""
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            line = " ".join(rewrite(line.split()))
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def loopback_only(sdp: str) -> str:
    """sdp without the ``a=candidate`` lines whose address is not in 127.0.0.0/8."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 5 or not fields[4].startswith("127."):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


# --------------------------------------------------------------------------- Janus API


class JanusError(RuntimeError):
    """A Janus API request failed, was refused, or its answer did not come in time."""


def _summary(event: Mapping[str, Any]) -> str:
    """``janus`` kind of an event plus its VideoRoom verb or reason, for messages."""
    kind = str(event.get("janus"))
    data = event.get("plugindata", {}).get("data", {})
    detail = data.get("videoroom") or event.get("reason") or event.get("type")
    if isinstance(data, dict):
        for key in ("configured", "started", "leaving", "unpublished", "left", "error"):
            if key in data:
                detail = f"{detail}:{key}={data[key]}"
    return f"{kind}({detail})" if detail else kind


@dataclass
class PluginReply:
    """A plugin's answer to a message: its data, and the JSEP it carried (offer or answer)."""

    data: JSON
    jsep: JSON | None
    event: JSON  # the whole Janus message ("success" or the async "event")


class JanusSession:
    """One Janus API session over the HTTP transport, with a long poll and a keepalive task.

    Every event the long poll brings is recorded on the handle it names (``sender``), or on
    the session when it names none; async plugin replies are matched by transaction.
    """

    def __init__(
        self,
        url: str,
        *,
        http: aiohttp.ClientSession | None = None,
        keepalive_interval: float = 25.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.keepalive_interval = keepalive_interval
        self.session_id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self.events: list[JSON] = []  # events naming no handle
        self.poll_errors: list[str] = []
        self._http = http
        self._own_http = http is None
        self._pending: dict[str, asyncio.Future[JSON]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            # trust_env stays False: lab traffic never goes through a proxy from the environment.
            self._http = aiohttp.ClientSession()
        return self._http

    @property
    def path(self) -> str:
        if self.session_id is None:
            raise JanusError("no Janus session: call create() first")
        return f"/{self.session_id}"

    async def request(
        self, path: str, payload: Mapping[str, Any], expect: Iterable[str] = ("success",)
    ) -> JSON:
        """POST one Janus API request (a transaction is added); its answer, or JanusError."""
        transaction = secrets.token_hex(6)
        return await self._post(path, {**payload, "transaction": transaction}, tuple(expect))

    async def _post(self, path: str, payload: JSON, expect: tuple[str, ...]) -> JSON:
        try:
            async with self.http.post(
                self.url + path, json=payload, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JanusError(f"POST {path} {payload.get('janus')}: {exc!r}") from exc
        if not isinstance(answer, dict) or answer.get("janus") not in expect:
            raise JanusError(f"POST {path} {payload} answered {answer}")
        if answer.get("transaction") != payload["transaction"]:
            raise JanusError(f"POST {path}: transaction mismatch in {answer}")
        return answer

    # --- lifecycle ---------------------------------------------------------------------------

    async def create(self) -> Self:
        """Create the Janus session and start its long poll and keepalive."""
        answer = await self.request("", {"janus": "create"})
        self.session_id = int(answer["data"]["id"])
        self._tasks = [
            asyncio.create_task(self._long_poll(), name=f"janus-poll-{self.session_id}"),
            asyncio.create_task(self._keepalive(), name=f"janus-keepalive-{self.session_id}"),
        ]
        return self

    async def attach(self, plugin: str = VIDEOROOM, opaque_id: str | None = None) -> JanusHandle:
        payload: JSON = {"janus": "attach", "plugin": plugin}
        if opaque_id is not None:
            payload["opaque_id"] = opaque_id
        answer = await self.request(self.path, payload)
        handle = JanusHandle(self, int(answer["data"]["id"]), plugin, opaque_id)
        self.handles[handle.handle_id] = handle
        return handle

    async def keepalive(self) -> None:
        await self.request(self.path, {"janus": "keepalive"}, expect=("ack",))

    async def destroy(self) -> None:
        """Destroy the Janus session (its handles go with it), then close()."""
        try:
            if self.session_id is not None and not self._closed:
                await self.request(self.path, {"janus": "destroy"})
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the long poll and keepalive and close the HTTP client; Janus is not told."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusError("session closed"))
        if self._own_http and self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> Self:
        return await self.create()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.destroy()

    # --- events ------------------------------------------------------------------------------

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_interval)
            try:
                await self.keepalive()
            except JanusError as exc:
                self.poll_errors.append(f"keepalive: {exc}")

    async def _long_poll(self) -> None:
        url = f"{self.url}{self.path}?maxev=10"
        timeout = aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 15)
        while True:
            try:
                async with self.http.get(url, timeout=timeout) as resp:
                    payload = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if self._closed:
                    return
                self.poll_errors.append(f"long poll: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            for event in payload if isinstance(payload, list) else [payload]:
                if isinstance(event, dict):
                    if event.get("janus") == "error":  # e.g. 458 no such session: stop
                        self.poll_errors.append(f"long poll: {event.get('error')}")
                        return
                    self._dispatch(event)

    def _dispatch(self, event: JSON) -> None:
        if event.get("janus") == "keepalive":
            return
        future = self._pending.get(str(event.get("transaction")))
        if future is not None and not future.done() and event.get("janus") == "event":
            future.set_result(event)
        sender = event.get("sender")
        handle = self.handles.get(sender) if isinstance(sender, int) else None
        if handle is not None:
            handle.record(event)
        else:
            self.events.append(event)


class JanusHandle:
    """A plugin handle of a JanusSession: messages, trickle, hangup, detach, and its events."""

    def __init__(
        self, session: JanusSession, handle_id: int, plugin: str, opaque_id: str | None
    ) -> None:
        self.session = session
        self.handle_id = handle_id
        self.plugin = plugin
        self.opaque_id = opaque_id
        self.events: list[JSON] = []  # everything the long poll brought for this handle
        self.detached = False
        self._changed = asyncio.Event()

    @property
    def path(self) -> str:
        return f"{self.session.path}/{self.handle_id}"

    def record(self, event: JSON) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(
        self,
        match: Callable[[JSON], bool],
        what: str,
        *,
        since: int = 0,
        within: float | None = None,
    ) -> JSON:
        """The first event from index ``since`` on that matches, waiting up to ``within``
        seconds (the session's timeout by default)."""
        limit = self.session.timeout if within is None else within
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = since
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = [_summary(e) for e in self.events[since:]]
                raise JanusError(
                    f"handle {self.handle_id}: no {what} within {limit:.1f}s; events: {got}; "
                    f"poll errors: {self.session.poll_errors}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_janus(self, kind: str, *, since: int = 0, within: float | None = None) -> JSON:
        """Wait for a core event of this handle: webrtcup, media, hangup, slowlink..."""
        return await self.wait_for(
            lambda e: e.get("janus") == kind, kind, since=since, within=within
        )

    async def message(
        self,
        body: Mapping[str, Any],
        jsep: Mapping[str, Any] | None = None,
        *,
        within: float | None = None,
    ) -> PluginReply:
        """Send a plugin message; a synchronous answer or the async event with its JSEP.

        A plugin error (``error_code`` in the data) raises JanusError.
        """
        session = self.session
        transaction = secrets.token_hex(6)
        payload: JSON = {"janus": "message", "body": dict(body), "transaction": transaction}
        if jsep is not None:
            payload["jsep"] = dict(jsep)
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        session._pending[transaction] = future
        try:
            answer = await session._post(self.path, payload, ("success", "ack"))
            if answer["janus"] == "ack":
                limit = session.timeout if within is None else within
                try:
                    answer = await asyncio.wait_for(future, limit)
                except TimeoutError:
                    raise JanusError(
                        f"{body}: no answer within {limit:.1f}s; poll errors: {session.poll_errors}"
                    ) from None
        finally:
            session._pending.pop(transaction, None)
        data = answer.get("plugindata", {}).get("data")
        if not isinstance(data, dict):
            raise JanusError(f"{body}: answer without plugin data: {answer}")
        if "error_code" in data or "error" in data:
            raise JanusError(f"{body}: {data.get('error_code')} {data.get('error')}")
        return PluginReply(data, answer.get("jsep"), answer)

    async def trickle_completed(self) -> None:
        await self.session.request(
            self.path, {"janus": "trickle", "candidate": {"completed": True}}, expect=("ack",)
        )

    async def hangup(self) -> None:
        """Ask Janus to close this handle's PeerConnection (the handle stays)."""
        await self.session.request(self.path, {"janus": "hangup"})

    async def detach(self) -> None:
        if not self.detached:
            self.detached = True
            await self.session.request(self.path, {"janus": "detach"})


# --------------------------------------------------------------------------- media


class MovingNoiseTrack(VideoStreamTrack):
    """320x240 30 fps video: diagonal stripes that move, and a block of fresh noise each frame.

    The noise never compresses, so the VP8 encoder spends its whole target bitrate (aiortc
    never targets less than 250 kbps); the stripes give the decoder something real to show.
    """

    def __init__(self, width: int = 320, height: int = 240, noise: int = 64) -> None:
        super().__init__()
        if width % 2 or height % 2 or not 0 < noise <= min(width, height):
            raise ValueError(f"bad video size {width}x{height} with noise block {noise}")
        self.width, self.height, self.noise = width, height, noise
        self.frames = 0
        self._stripes = bytes((x // 8 % 8) * 28 + 16 for x in range(2 * width + height))

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        luma, *chroma = frame.planes
        stride, shift = luma.line_size, (self.frames * 3) % self.width
        pad = bytes(stride - self.width)
        rows = [self._stripes[shift + y : shift + y + self.width] + pad for y in range(self.height)]
        # The noise block wanders around the picture.
        x0 = (self.frames * 2) % (self.width - self.noise + 1)
        y0 = (self.frames) % (self.height - self.noise + 1)
        noise = os.urandom(self.noise * self.noise)
        for i in range(self.noise):
            row = rows[y0 + i]
            rows[y0 + i] = (
                row[:x0] + noise[i * self.noise : (i + 1) * self.noise] + row[x0 + self.noise :]
            )
        luma.update(b"".join(rows))
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame


# --------------------------------------------------------------------------- participants


class _Participant:
    """What publishers and subscribers share: a session, a VideoRoom handle and a PC."""

    role = "participant"

    def __init__(
        self,
        janus_url: str,
        room: int,
        opaque_id: str | None,
        timeout: float,
    ) -> None:
        self.janus_url = janus_url
        self.room = room
        self.opaque_id = opaque_id
        self.timeout = timeout
        self.session = JanusSession(janus_url, timeout=timeout)
        self._handle: JanusHandle | None = None
        self._pc: RTCPeerConnection | None = None
        self.closed = False

    @property
    def handle(self) -> JanusHandle:
        if self._handle is None:
            raise JanusError(f"{self.role} not started")
        return self._handle

    @property
    def pc(self) -> RTCPeerConnection:
        if self._pc is None:
            raise JanusError(f"{self.role} has no PeerConnection yet")
        return self._pc

    @property
    def session_id(self) -> int:
        assert self.session.session_id is not None
        return self.session.session_id

    @property
    def handle_id(self) -> int:
        return self.handle.handle_id

    async def _attach(self) -> JanusHandle:
        await self.session.create()
        self._handle = await self.session.attach(VIDEOROOM, self.opaque_id)
        return self._handle

    async def _start(self) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(Exception):  # the start failure is the one to report
                await self.close()
            raise
        return self

    async def hangup(self) -> None:
        """Janus closes the PeerConnection (``hangup`` request); waits for its hangup event."""
        mark = len(self.handle.events)
        await self.handle.hangup()
        await self.handle.wait_janus("hangup", since=mark)

    async def leave(self) -> PluginReply:
        """VideoRoom ``leave``: the participant leaves the room, the handle stays."""
        return await self.handle.message({"request": "leave"})

    async def close(self) -> None:
        """Detach the handle, destroy the session, close the PeerConnection; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._handle is not None and self.session.session_id is not None:
                await self._handle.detach()
            await self.session.destroy()
        finally:
            await self._stop_media()
            if self._pc is not None:
                await self._pc.close()

    async def _stop_media(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Publisher(_Participant):
    """Joins a VideoRoom as a publisher and publishes VP8 + Opus until closed.

    ``start()`` returns once Janus reports ``webrtcup`` for the handle. ``id`` is the
    publisher id Janus assigned (what subscribers name as ``feed``).
    """

    role = "publisher"

    def __init__(
        self,
        janus_url: str,
        room: int,
        display: str,
        *,
        opaque_id: str | None = None,
        audio: bool = True,
        video: bool = True,
        publish_options: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        offer_filter: Callable[[str], str] | None = None,
        answer_filter: Callable[[str], str] = loopback_only,
        wait_webrtcup: bool = True,
    ) -> None:
        """``offer_filter`` rewrites the offer's SDP before Janus gets it, ``answer_filter``
        Janus's answer before aiortc does (the ICE failure recipes of the fixtures);
        without ``wait_webrtcup``, ``start()`` returns once the answer is applied."""
        super().__init__(janus_url, room, opaque_id, timeout)
        self.offer_filter = offer_filter
        self.answer_filter = answer_filter
        self.wait_webrtcup = wait_webrtcup
        if not (audio or video):
            raise ValueError("a publisher needs audio, video or both")
        self.display = display
        self.audio, self.video = audio, video
        self.publish_options = dict(publish_options or {})
        self.id: int | None = None
        self.private_id: int | None = None
        self.joined: JSON = {}
        self.configured: JSON = {}
        self.video_track: MovingNoiseTrack | None = None
        self.audio_track: AudioStreamTrack | None = None

    async def _start(self) -> None:
        handle = await self._attach()
        joined = await handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display}
        )
        if joined.data.get("videoroom") != "joined":
            raise JanusError(f"join as publisher: {joined.data}")
        self.joined = joined.data
        self.id, self.private_id = int(joined.data["id"]), joined.data.get("private_id")

        pc = self._pc = peer_connection()
        if self.video:
            self.video_track = MovingNoiseTrack()
            pc.addTrack(self.video_track)
        if self.audio:
            self.audio_track = AudioStreamTrack()
            pc.addTrack(self.audio_track)
        await pc.setLocalDescription(await pc.createOffer())  # gathers: a full offer
        sdp = pc.localDescription.sdp
        offer = {"type": "offer", "sdp": self.offer_filter(sdp) if self.offer_filter else sdp}
        body = {
            "request": "publish",
            "audio": self.audio,
            "video": self.video,
            "display": self.display,
            **self.publish_options,
        }
        mark = len(handle.events)
        reply = await handle.message(body, offer)
        if reply.data.get("configured") != "ok" or not reply.jsep:
            raise JanusError(f"publish: {reply.data} (jsep {reply.jsep})")
        self.configured = reply.data
        answer = RTCSessionDescription(sdp=self.answer_filter(reply.jsep["sdp"]), type="answer")
        await pc.setRemoteDescription(answer)
        await handle.trickle_completed()
        if self.wait_webrtcup:
            await handle.wait_janus("webrtcup", since=mark)

    async def sent(self, kind: str) -> tuple[float, int, int]:
        """(monotonic time, bytesSent, packetsSent) of this kind from aiortc's own getStats.
        aiortc counts RTP payload bytes; Janus counts whole packets (about 24 header bytes
        more each)."""
        report = await self.pc.getStats()
        payload = packets = 0
        for stats in report.values():
            if (
                getattr(stats, "type", None) == "outbound-rtp"
                and getattr(stats, "kind", "") == kind
            ):
                payload += stats.bytesSent
                packets += stats.packetsSent
        return time.monotonic(), payload, packets

    async def unpublish(self) -> PluginReply:
        """VideoRoom ``unpublish``: media stops, the publisher stays in the room."""
        return await self.handle.message({"request": "unpublish"})

    async def _stop_media(self) -> None:
        for track in (self.video_track, self.audio_track):
            if track is not None:
                track.stop()


@dataclass
class ReceivedTrack:
    """One track a subscriber receives: its mid, kind, the feed it comes from, frames so far."""

    mid: str
    kind: str
    feed: int | None
    frames: int = 0
    ended: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Subscriber(_Participant):
    """Joins a VideoRoom as a subscriber to feeds, answers Janus's offer, receives media.

    ``start()`` returns once Janus reports ``webrtcup`` and every track has delivered
    ``min_frames`` decoded frames.
    """

    role = "subscriber"

    def __init__(
        self,
        janus_url: str,
        room: int,
        feeds: Sequence[int],
        *,
        opaque_id: str | None = None,
        min_frames: int = 5,
        timeout: float = DEFAULT_TIMEOUT,
        drop_share: float = 0.0,
    ) -> None:
        """``drop_share`` of the RTP packets that reach this subscriber are thrown away before
        aiortc sees them, from the moment ``start()`` returns (a downlink gone bad: its
        receiver reports and NACKs tell Janus; dropping from the first packet would leave
        VP8 without a decodable frame)."""
        super().__init__(janus_url, room, opaque_id, timeout)
        if not 0.0 <= drop_share < 1.0:
            raise ValueError(f"drop_share must be in [0, 1), not {drop_share}")
        self.drop_share = drop_share
        self.dropped = 0
        self._dropping = False
        self._random = random.Random(1234)
        if not feeds:
            raise ValueError("a subscriber needs at least one feed")
        self.feeds = list(feeds)
        self.min_frames = min_frames
        self.attached: JSON = {}
        self.tracks: dict[str, ReceivedTrack] = {}  # mid -> what arrives there

    async def _start(self) -> None:
        handle = await self._attach()
        reply = await handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": [{"feed": feed} for feed in self.feeds],
            }
        )
        if reply.data.get("videoroom") != "attached" or not reply.jsep:
            raise JanusError(f"join as subscriber: {reply.data} (jsep {reply.jsep})")
        self.attached = reply.data
        feed_of = {
            str(s.get("mid")): s.get("feed_id")
            for s in reply.data.get("streams", [])
            if isinstance(s, dict)
        }

        pc = self._pc = peer_connection()
        offer = RTCSessionDescription(sdp=loopback_only(reply.jsep["sdp"]), type="offer")
        await pc.setRemoteDescription(offer)
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            feed = feed_of.get(mid)
            received = ReceivedTrack(mid, transceiver.kind, feed if isinstance(feed, int) else None)
            received.task = asyncio.create_task(
                self._consume(transceiver.receiver.track, received), name=f"recv-{mid}"
            )
            self.tracks[mid] = received
            if self.drop_share:
                self._drop_some(transceiver.receiver)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        mark = len(handle.events)
        started = await handle.message({"request": "start"}, answer)
        if started.data.get("started") != "ok":
            raise JanusError(f"start: {started.data}")
        await handle.wait_janus("webrtcup", since=mark)
        await self.wait_frames(self.min_frames)
        self._dropping = bool(self.drop_share)

    def _drop_some(self, receiver: Any) -> None:
        handle_rtp = receiver._handle_rtp_packet

        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            if self._dropping and self._random.random() < self.drop_share:
                self.dropped += 1
                return
            await handle_rtp(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = lossy

    @staticmethod
    async def _consume(track: MediaStreamTrack, received: ReceivedTrack) -> None:
        try:
            while True:
                await track.recv()
                received.frames += 1
        except MediaStreamError:
            received.ended = True

    async def wait_frames(self, count: int, within: float | None = None) -> None:
        """Wait until every track has received at least count frames in total."""
        limit = self.timeout if within is None else within
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while any(t.frames < count for t in self.tracks.values()):
            if loop.time() > deadline:
                raise JanusError(f"fewer than {count} frames within {limit:.1f}s: {self.frames}")
            await asyncio.sleep(0.05)

    @property
    def frames(self) -> dict[str, int]:
        """mid -> decoded frames received so far."""
        return {mid: t.frames for mid, t in self.tracks.items()}

    async def _stop_media(self) -> None:
        for received in self.tracks.values():
            if received.task is not None:
                received.task.cancel()
        for received in self.tracks.values():
            if received.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await received.task
