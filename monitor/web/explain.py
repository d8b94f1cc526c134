"""One participant explained: what an on-call engineer asked "why did this user fail" needs,
from one URL. ``GET /api/v1/publishers/{server}/{room}/{id}`` and
``GET /api/v1/handles/{server}/{session}/{handle}``: the connection story in order
(negotiation, candidates with type and scope, ICE states, selected pair, DTLS, webrtcup or
the failure with stage and cause), bitrate now and over the last minutes, the room's cap,
reuse flags, the subscribers' downstream state."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from monitor.answers import error_response, json_response
from monitor.signals import Signals
from monitor.signals.bitrate import KINDS, over_cap
from monitor.signals.ice import CandidateKey
from monitor.state import Server
from monitor.state.model import Handle, Publisher, Subscriber
from monitor.web.keys import AUDIT, CONFIG, SIGNALS, STATE


def _candidate(key: CandidateKey, scope: str) -> dict[str, Any]:
    _, address, port, transport, kind = key
    return {"type": kind, "scope": scope, "transport": transport, "address": address,
            "port": port}  # fmt: skip


def connection_summary(signals: Signals, server: Server, key: tuple[int, int] | None) -> Any:
    """Where the handle's PeerConnection stands: up, failed (stage, cause), or in progress."""
    connection = signals.ice.of(server, key)
    handle = server.handle(key) if key is not None else None
    if connection is None:
        return {"state": "up" if handle is not None and handle.pc_up else None}
    attempt = connection.attempt
    state = attempt.outcome or ("negotiated" if attempt.negotiated_at is not None else None)
    if state is None and connection.failure is not None:
        state = "failed"
    failure = connection.failure
    return {
        "state": state,
        "failure": {"stage": failure[0], "cause": failure[1]} if failure else None,
        "setup_seconds": connection.setup_seconds,
    }


def bitrate_now(signals: Signals, server: Server, publisher: Publisher, now: float) -> Any:
    media = signals.bitrate.of(server, publisher.handle)
    if media is None or not publisher.publishing or not signals.bitrate.fresh(media, now):
        return None
    return {kind: media.bitrate(kind) for kind in KINDS}


def publisher_signals(
    request: web.Request,
    server: Server,
    publisher: Publisher,
    now: float,
    viewers: list[Subscriber] | None = None,
) -> dict[str, Any]:
    """What the signals say of a publisher, for /api/v1/publishers; ``viewers``, its
    subscribers, when the caller indexed them already (one walk for every publisher)."""
    signals = request.app[SIGNALS]
    tolerance = request.app[CONFIG].current.remediation.over_bitrate.tolerance
    room = server.rooms.get(publisher.room)
    cap = room.bitrate_cap if room else None
    rates = bitrate_now(signals, server, publisher, now)
    total = sum(r for r in rates.values() if r is not None) if rates else None
    return {
        "bitrate": rates,
        "bitrate_cap": cap,
        "over_cap": over_cap(total, cap, tolerance) if rates else None,
        "downstream": downstream(signals, server, publisher, viewers),
        "ice": connection_summary(signals, server, publisher.handle),
        "reuse": sorted(signals.reuse.reused(server, publisher.handle)),
    }


def downstream(
    signals: Signals, server: Server, publisher: Publisher, viewers: list[Subscriber] | None
) -> dict[str, Any]:
    if viewers is None:
        viewers = [
            s for s in server.subscribers_in(publisher.room) if publisher.publisher_id in s.feed_ids
        ]
    degraded, worst = 0, None
    for viewer in viewers:
        down = signals.quality.of(server, viewer.handle)
        if down is None or not down.sent_bitrate:
            continue
        degraded += down.is_degraded
        ratio = down.loss
        if ratio is not None:
            worst = ratio if worst is None else max(worst, ratio)
    return {"subscribers": len(viewers), "degraded": degraded, "loss_ratio_max": worst}


def _story(signals: Signals, server: Server, key: tuple[int, int]) -> dict[str, Any]:
    connection = signals.ice.of(server, key)
    summary = connection_summary(signals, server, key)
    if connection is None:
        return {**summary, "story": [], "candidates": {"local": [], "remote": []}}
    shown = connection.attempt
    if not (shown.local or shown.remote) and connection.previous is not None:
        shown = connection.previous  # the attempt that ended, not the empty next one
    return {
        **summary,
        "story": [{"at": at / 1e6 if at else None, "what": what} for at, what in connection.story],
        "candidates": {
            "local": [_candidate(key, scope) for key, scope in shown.local.items()],
            "remote": [_candidate(key, scope) for key, scope in shown.remote.items()],
        },
    }


def _explain_handle(request: web.Request, server: Server, handle: Handle) -> dict[str, Any]:
    signals = request.app[SIGNALS]
    key = (handle.session_id, handle.handle_id)
    now = time.monotonic()
    media = signals.bitrate.of(server, key)
    history = (
        [{"seconds_ago": round(now - at, 3), "bits_per_second": bps} for at, bps in media.history]
        if media is not None
        else []
    )
    down = signals.quality.of(server, key)
    return {
        "server": server.name,
        "session_id": handle.session_id,
        "handle_id": handle.handle_id,
        "plugin": handle.plugin,
        "opaque_id": handle.opaque_id,
        "role": handle.role,
        "room": handle.room,
        "publisher": handle.publisher_id,
        "pc_up": handle.pc_up,
        "connection": _story(signals, server, key),
        "bitrate": {
            "now": {kind: media.bitrate(kind) for kind in KINDS} if media else None,
            "received_bytes": dict(media.totals) if media else {},
            "history": history,
        },
        "downstream": None
        if down is None
        else {
            "sent_bits_per_second": down.sent_bitrate,
            "remb_bits_per_second": down.remb,
            "link_quality": down.link_quality,
            "loss_ratio": down.loss,
            "degraded": down.is_degraded,
        },
        "reuse": sorted(signals.reuse.reused(server, key)),
        "remediation": [
            entry
            for entry in request.app[AUDIT].recent
            if entry["server"] == server.name and (entry["session_id"], entry["handle_id"]) == key
        ],
    }


def _server(request: web.Request) -> Server | None:
    return request.app[STATE].servers.get(request.match_info["server"])


async def explain_publisher(request: web.Request) -> web.Response:
    server = _server(request)
    key = (request.match_info["room"], request.match_info["id"])
    publisher = server.publishers.get(key) if server is not None else None
    if server is None or publisher is None:
        return error_response(404, "no such publisher (server, room and id as /api/v1/publishers)")
    handle = server.handle(publisher.handle) if publisher.handle else None
    show_display = request.app[CONFIG].current.signals.expose_display
    body: dict[str, Any] = {
        "server": server.name,
        "room": publisher.room,
        "publisher": publisher.publisher_id,
        "display": publisher.display if show_display else None,
        "publishing": publisher.publishing,
        **publisher_signals(request, server, publisher, time.monotonic()),
        "handle": _explain_handle(request, server, handle) if handle is not None else None,
    }
    return json_response(body)


async def explain_handle(request: web.Request) -> web.Response:
    server = _server(request)
    try:
        key = (int(request.match_info["session"]), int(request.match_info["handle"]))
    except ValueError:
        return error_response(400, "session and handle are integers")
    handle = server.handle(key) if server is not None else None
    if server is None or handle is None:
        return error_response(404, "no such handle (server, session_id, handle_id)")
    return json_response(_explain_handle(request, server, handle))
