"""A real browser publisher: Debian's headless Chromium, driven over the DevTools protocol,
publishing simulcast (three rids) into a VideoRoom through a lab Janus.

The recipe of fixture 60-simulcast-chromium: ``chromium --headless=new`` with a fake camera
(1280x720) and microphone, mDNS hiding of local addresses off, a page served from 127.0.0.1
(``navigator.mediaDevices`` needs a secure context), an RTCPeerConnection with no ICE
servers, the video sent with ``sendEncodings`` h / m (1/2) / l (1/4). The SDP goes to and
from Janus over its HTTP API (lab.webrtc.JanusSession). Run inside the lab network namespace,
Chromium's only candidates are 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import aiohttp
from aiohttp import web

from lab.janus import free_port, stop_process
from lab.webrtc import VIDEOROOM, JanusError, JanusHandle, JanusSession, loopback_only

PAGE = "<!doctype html><html><head><title>lab publisher</title></head><body></body></html>"

OFFER_JS = """(async () => {
  const pc = window.pc = new RTCPeerConnection({iceServers: [], bundlePolicy: "max-bundle"});
  const media = await navigator.mediaDevices.getUserMedia(
    {video: {width: 1280, height: 720}, audio: true});
  pc.addTransceiver(media.getAudioTracks()[0], {direction: "sendonly"});
  pc.addTransceiver(media.getVideoTracks()[0], {direction: "sendonly", sendEncodings: [
    {rid: "h"}, {rid: "m", scaleResolutionDownBy: 2}, {rid: "l", scaleResolutionDownBy: 4}]});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(done => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && done());
    setTimeout(done, 5000);
  });
  return pc.localDescription.sdp;
})()"""

STATS_JS = """(async () => {
  const out = {};
  (await window.pc.getStats()).forEach(s => {
    if (s.type === "outbound-rtp" && s.kind === "video")
      out[s.rid || "-"] = {bytes: s.bytesSent, headers: s.headerBytesSent || 0,
                           packets: s.packetsSent, width: s.frameWidth || 0};
  });
  return out;
})()"""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """One headless Chromium with one page, evaluated into over its DevTools WebSocket."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self.home = Path(tempfile.mkdtemp(prefix="lab-chromium-"))
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._page_runner: web.AppRunner | None = None

    async def start(self, within: float = 30.0) -> Self:
        page_port, debug_port = free_port(), free_port()

        async def page(request: web.Request) -> web.Response:
            return web.Response(text=PAGE, content_type="text/html")

        app = web.Application()
        app.router.add_get("/", page)
        self._page_runner = web.AppRunner(app, access_log=None)
        await self._page_runner.setup()
        await web.TCPSite(self._page_runner, "127.0.0.1", page_port).start()
        env = {**os.environ, "HOME": str(self.home)}
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - once per test, before any media
            [
                self.binary, "--headless=new", f"--remote-debugging-port={debug_port}",
                "--remote-debugging-address=127.0.0.1", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--disable-features=WebRtcHideLocalIpsWithMdns", "--no-sandbox",
                "--no-first-run", "--disable-gpu", f"--user-data-dir={self.home / 'profile'}",
                f"http://127.0.0.1:{page_port}/",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=(self.home / "chromium.log").open("wb"),
            start_new_session=True,
        )  # fmt: skip
        self._http = aiohttp.ClientSession()
        deadline = time.monotonic() + within
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                async with self._http.get(f"http://127.0.0.1:{debug_port}/json/list") as reply:
                    pages = [p for p in await reply.json() if p.get("type") == "page"]
                    ready = [p for p in pages if str(page_port) in p.get("url", "")]
                    if ready and self._ws is None:
                        self._ws = await self._http.ws_connect(
                            ready[0]["webSocketDebuggerUrl"], max_msg_size=0
                        )
            if self._ws is not None and await self.evaluate(
                f'location.href.startsWith("http://127.0.0.1:{page_port}/")'
                ' && document.readyState === "complete" && !!navigator.mediaDevices'
            ):
                return self  # the page itself, loaded (not the about:blank before it)
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise JanusError(f"Chromium did not come up: {self.log_tail()}")
            await asyncio.sleep(0.2)

    def log_tail(self, size: int = 2000) -> str:
        path = self.home / "chromium.log"
        return path.read_bytes()[-size:].decode(errors="replace") if path.exists() else ""

    async def evaluate(self, expression: str, within: float = 30.0) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        assert self._ws is not None
        call_id = next(self._ids)
        await self._ws.send_str(json.dumps({
            "id": call_id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "awaitPromise": True, "returnByValue": True},
        }))  # fmt: skip
        deadline = time.monotonic() + within
        while True:
            message = await self._ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            if message.type != aiohttp.WSMsgType.TEXT:
                raise JanusError(f"DevTools socket: {message.type}")
            reply = json.loads(message.data)
            if reply.get("id") != call_id:
                continue  # an event
            result = reply.get("result", {})
            if "exceptionDetails" in result or "error" in reply:
                raise JanusError(f"page evaluation failed: {reply}")
            return result.get("result", {}).get("value")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None:
            stop_process(self.proc)
        if self._page_runner is not None:
            await self._page_runner.cleanup()
        shutil.rmtree(self.home, ignore_errors=True)


class ChromiumPublisher:
    """Chromium publishing simulcast into ``room``; ``start()`` returns after ``webrtcup``."""

    def __init__(self, chromium: Chromium, janus_url: str, room: int, display: str) -> None:
        self.chromium = chromium
        self.room = room
        self.display = display
        self.session = JanusSession(janus_url, timeout=20.0)
        self.handle: JanusHandle | None = None
        self.id: int | None = None
        self.offer = ""

    @property
    def session_id(self) -> int:
        assert self.session.session_id is not None
        return self.session.session_id

    async def start(self) -> Self:
        await self.session.create()
        handle = self.handle = await self.session.attach(VIDEOROOM, f"chromium-{self.display}")
        joined = await handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display}
        )
        self.id = int(joined.data["id"])
        self.offer = await self.chromium.evaluate(OFFER_JS)
        mark = len(handle.events)
        reply = await handle.message(
            {"request": "publish", "audio": True, "video": True},
            {"type": "offer", "sdp": self.offer},
        )
        if not reply.jsep:
            raise JanusError(f"publish: no answer ({reply.data})")
        answer = json.dumps({"type": "answer", "sdp": loopback_only(reply.jsep["sdp"])})
        await self.chromium.evaluate(f"window.pc.setRemoteDescription({answer}).then(() => 1)")
        await handle.trickle_completed()
        await handle.wait_janus("webrtcup", since=mark)
        return self

    async def sent(self) -> tuple[float, dict[str, dict[str, int]]]:
        """(monotonic time, per rid: bytes, header bytes, packets, frame width) from getStats."""
        return time.monotonic(), await self.chromium.evaluate(STATS_JS)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.handle is not None:
                await self.handle.detach()
        with contextlib.suppress(Exception):
            await self.session.destroy()
        await self.session.close()
