"""PeerConnection setup: candidates, ICE and DTLS states, setup time, and failures with their
stage and cause (SPEC "WebRTC / ICE"; janus-protocol.md §1.3 and "ICE failure timing").

Per handle, one ``Attempt`` per PeerConnection: negotiated once Janus has both a local and a
remote SDP, then either up (``webrtcup``) or failed, once:

- ``ice``: hangup "ICE failed" (Janus's own verdict after 5 s of ``failed``; a ``failed``
  that recovers never gets there), or a gathering error;
- ``dtls``: a DTLS hangup (timeout, alert, error), as after ICE went ready against a private
  ``nat_1_1_mapping`` address the client could not answer to;
- ``stalled``: no ``webrtcup`` within ``signals.setup_timeout`` of negotiation (an mDNS-only
  client: Janus reports nothing at all). Checked by ``tick`` and when the handle goes.

A session destroyed (or a handle detached) before the timeout is not a failure.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from monitor.decode.candidates import CANDIDATE_TYPES, Candidate, candidates_in_sdp, parse_candidate
from monitor.decode.polls import PolledHandle
from monitor.decode.records import (
    CandidateEvent,
    ConnectionEvent,
    DtlsEvent,
    Event,
    IceStateEvent,
    JsepEvent,
    SelectedPairEvent,
)
from monitor.signals.ice_cause import failure_cause
from monitor.state import PUBLISHER, SUBSCRIBER, Ops, RemovalHooks, Router, Server, Stage
from monitor.state.model import Handle
from monitor.telemetry import Histogram

ICE_STATES = frozenset(("disconnected", "gathering", "connecting", "connected", "ready", "failed"))
HANGUP_REASONS = frozenset((
    "ICE failed", "DTLS alert", "DTLS timeout", "DTLS error", "DTLS-SRTP stack error",
    "Gathering error", "ICE gathering error", "Janus API", "Admin API", "Close PC", "Detach",
))  # fmt: skip
ICE_HANGUPS = frozenset(("ICE failed", "Gathering error", "ICE gathering error"))
SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
STORY_STEPS = 64
MAX_CANDIDATES = 64  # per side and attempt: real peers offer a handful

HandleRef = tuple[str, int, int]
CandidateKey = tuple[str, str, int, str, str]  # (side, address, port, transport, type)


def _label(value: str | None, known: frozenset[str]) -> str:
    return value if value in known else "other"


@dataclass(slots=True)
class Attempt:
    """One PeerConnection on a handle, from its first SDP to up, failed or gone."""

    # Each candidate as its key and address scope (all the cause and the API read): the
    # parsed Candidate with its split strings was 400 bytes each, kept for every handle.
    local: dict[CandidateKey, str] = field(default_factory=dict)
    remote: dict[CandidateKey, str] = field(default_factory=dict)
    local_sdp: bool = False
    remote_sdp: bool = False
    negotiated_us: int | None = None  # Janus's clock
    negotiated_at: float | None = None  # the daemon's monotonic clock
    ice_ok: bool = False  # reached connected or ready
    outcome: str | None = None  # "up" or "failed"


@dataclass(slots=True)
class Connection:
    """A handle's connection story: the current attempt and what happened, in order."""

    attempt: Attempt = field(default_factory=Attempt)
    # When (Janus's clock) and what, side by side: a (timestamp, text) tuple per step was 90
    # bytes, these are 16 (texts are shared, see said()); an empty deque was 760.
    story_at: array[int] = field(default_factory=lambda: array("q"))
    story_what: list[str] = field(default_factory=list)

    def tell(self, step: tuple[int, str]) -> None:
        """Add (Janus timestamp, what happened) to the story, dropping its oldest when full."""
        if len(self.story_what) >= STORY_STEPS:
            del self.story_at[0], self.story_what[0]
        at, what = step
        self.story_at.append(at if -(2**63) <= at < 2**63 else 0)
        self.story_what.append(what)

    @property
    def story(self) -> list[tuple[int, str]]:
        return list(zip(self.story_at, self.story_what, strict=True))

    previous: Attempt | None = None  # the attempt before this one, once it ended
    failure: tuple[str, str] | None = None  # (stage, cause) of the last failed attempt
    setup_seconds: float | None = None  # of the last attempt that came up


@dataclass(slots=True)
class IceCounters:
    """One server's counters (kept across Janus restarts: they are totals)."""

    candidates: dict[tuple[str, str, str], int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    hangups: dict[str, int] = field(default_factory=dict)
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    setup: dict[str, Histogram] = field(default_factory=dict)


K = TypeVar("K")
_WORDS: dict[str, str] = {}  # story texts seen, so 20 k stories share one "ice ready"
MAX_WORDS = 4096


def said(text: str) -> str:
    """The one copy of a story text (within a bound: texts with addresses are not shared)."""
    found = _WORDS.get(text)
    if found is None:
        if len(_WORDS) >= MAX_WORDS:
            return text
        found = _WORDS[text] = text
    return found


def _bump(counts: dict[K, int], key: K) -> None:
    counts[key] = counts.get(key, 0) + 1


class IceSignal:
    def __init__(self, setup_timeout: Callable[[], float] = lambda: 20.0) -> None:
        self.setup_timeout = setup_timeout
        self.connections: dict[HandleRef, Connection] = {}
        # Negotiated attempts not known up or failed yet: all the tick has to look at (walking
        # every connection each second was 15% of the loop at 20 k handles).
        self.pending: dict[HandleRef, Attempt] = {}
        self.counters: dict[str, IceCounters] = {}
        self.last_now = float("-inf")  # the latest monotonic time a handler or tick saw

    def register(self, router: Router, hooks: RemovalHooks) -> None:
        after = Stage.AFTER
        router.register(JsepEvent, after, self._on_jsep)
        router.register(CandidateEvent, after, self._on_candidate)
        router.register(IceStateEvent, after, self._on_ice)
        router.register(SelectedPairEvent, after, self._on_pair)
        router.register(DtlsEvent, after, self._on_dtls)
        router.register(ConnectionEvent, after, self._on_connection)
        router.register(PolledHandle, after, self._on_polled)
        hooks.on_handle_removed(self._on_handle_removed)
        hooks.on_server_reset(self._forget_server)

    def server(self, name: str) -> IceCounters:
        counters = self.counters.get(name)
        if counters is None:
            counters = self.counters[name] = IceCounters()
        return counters

    def _connection(self, server: Server, event: Event, now: float) -> Connection | None:
        self.last_now = max(self.last_now, now)
        if event.session_id is None or event.handle_id is None:
            return None
        if server.handle((event.session_id, event.handle_id)) is None:
            return None  # not tracked: a late event, or over the handle limit
        ref = (server.name, event.session_id, event.handle_id)
        connection = self.connections.get(ref)
        if connection is None:
            connection = self.connections[ref] = Connection()
        return connection

    # --- handlers ------------------------------------------------------------------------------

    def _on_jsep(self, ops: Ops, server: Server, event: Event, body: JsepEvent, now: float) -> None:
        connection = self._connection(server, event, now)
        if connection is None:
            return
        attempt = connection.attempt
        if attempt.outcome is not None:  # a renegotiation after the last one ended
            connection.previous = attempt
            attempt = connection.attempt = Attempt()
        side = "local" if body.owner == "local" else "remote"
        for candidate in candidates_in_sdp(body.sdp):
            self._candidate(server, attempt, side, candidate)
        if side == "local":
            attempt.local_sdp = True
        else:
            attempt.remote_sdp = True
        connection.tell((event.timestamp, said(f"{side} {body.sdp_type}")))
        if attempt.local_sdp and attempt.remote_sdp and attempt.negotiated_at is None:
            attempt.negotiated_us, attempt.negotiated_at = event.timestamp, now
            self.pending[(server.name, event.session_id or 0, event.handle_id or 0)] = attempt

    def _on_candidate(
        self, ops: Ops, server: Server, event: Event, body: CandidateEvent, now: float
    ) -> None:
        connection = self._connection(server, event, now)
        candidate = parse_candidate(body.candidate)
        if connection is None or candidate is None:
            return
        if self._candidate(server, connection.attempt, body.side, candidate):
            text = f"{body.side} candidate {candidate.type} {candidate.scope} {candidate.transport}"
            connection.tell((event.timestamp, said(text)))

    def _candidate(self, server: Server, attempt: Attempt, side: str, candidate: Candidate) -> bool:
        """Record a candidate once per attempt; count it; whether it was new."""
        known = attempt.local if side == "local" else attempt.remote
        key = (side, candidate.address, candidate.port, said(candidate.transport),
               said(candidate.type))  # fmt: skip
        if key in known or len(known) >= MAX_CANDIDATES:
            return False
        known[key] = candidate.scope
        kind = candidate.type if candidate.type in CANDIDATE_TYPES else "unknown"
        _bump(self.server(server.name).candidates, (side, kind, candidate.scope))
        return True

    def _on_polled(
        self, ops: Ops, server: Server, event: Event, body: PolledHandle, now: float
    ) -> None:
        """A full handle_info lists the candidates of the current PeerConnection: the ones
        events missed (events off, or the daemon started late) count too."""
        if not (body.exists and (body.local_candidates or body.remote_candidates)):
            return
        if server.handle((body.session_id, body.handle_id)) is None:
            return
        ref = (server.name, body.session_id, body.handle_id)
        connection = self.connections.get(ref)
        if connection is None:
            connection = self.connections[ref] = Connection()
        for side, lines in (("local", body.local_candidates), ("remote", body.remote_candidates)):
            for line in lines:
                candidate = parse_candidate(line)
                if candidate is not None:
                    self._candidate(server, connection.attempt, side, candidate)

    def _on_ice(
        self, ops: Ops, server: Server, event: Event, body: IceStateEvent, now: float
    ) -> None:
        _bump(self.server(server.name).states, _label(body.state, ICE_STATES))
        connection = self._connection(server, event, now)
        if connection is None:
            return
        if body.state in ("connected", "ready"):
            connection.attempt.ice_ok = True
        connection.tell((event.timestamp, said(f"ice {body.state}")))

    def _on_pair(
        self, ops: Ops, server: Server, event: Event, body: SelectedPairEvent, now: float
    ) -> None:
        local = body.local.type if body.local else None
        remote = body.remote.type if body.remote else None
        pair = (_label(local, CANDIDATE_TYPES), _label(remote, CANDIDATE_TYPES))
        _bump(self.server(server.name).pairs, pair)
        connection = self._connection(server, event, now)
        if connection is not None:
            connection.tell((event.timestamp, f"selected pair {body.pair}"))

    def _on_dtls(self, ops: Ops, server: Server, event: Event, body: DtlsEvent, now: float) -> None:
        connection = self._connection(server, event, now)
        if connection is not None and (body.state != "trying" or not body.retransmissions):
            connection.tell((event.timestamp, said(f"dtls {body.state}")))

    def _on_connection(
        self, ops: Ops, server: Server, event: Event, body: ConnectionEvent, now: float
    ) -> None:
        connection = self._connection(server, event, now)
        if body.connection == "hangup":
            _bump(self.server(server.name).hangups, _label(body.reason, HANGUP_REASONS))
        if connection is None:
            return
        attempt = connection.attempt
        handle = server.handle((event.session_id or 0, event.handle_id or 0))
        if body.connection == "webrtcup":
            connection.tell((event.timestamp, "webrtcup"))
            if attempt.outcome is None:
                attempt.outcome = "up"
                self._setup_time(server, connection, handle, event.timestamp, now)
            return
        connection.tell((event.timestamp, f"hangup {body.reason or ''}".rstrip()))
        if attempt.outcome is None:
            reason = body.reason or ""
            if reason in ICE_HANGUPS:
                self._fail(server, connection, "ice")
            elif reason.startswith("DTLS"):
                self._fail(server, connection, "dtls")
            elif self._overdue(server, attempt, now, event.timestamp):
                self._fail(server, connection, "stalled")
        # The next negotiation builds a new PeerConnection.
        connection.previous, connection.attempt = attempt, Attempt()

    # --- outcomes ------------------------------------------------------------------------------

    def _setup_time(
        self, server: Server, connection: Connection, handle: Handle | None, at_us: int, now: float
    ) -> None:
        attempt = connection.attempt
        if attempt.negotiated_at is None:
            return
        if at_us and attempt.negotiated_us:
            seconds = max(0.0, (at_us - attempt.negotiated_us) / 1e6)
        else:
            seconds = max(0.0, now - attempt.negotiated_at)
        role = (
            handle.role
            if handle is not None and handle.role in (PUBLISHER, SUBSCRIBER)
            else "other"
        )
        counters = self.server(server.name)
        histogram = counters.setup.get(role or "other")
        if histogram is None:
            histogram = counters.setup[role or "other"] = Histogram(SETUP_BUCKETS)
        histogram.observe(seconds)
        connection.setup_seconds = seconds

    def _overdue(self, server: Server, attempt: Attempt, now: float, at_us: int = 0) -> bool:
        """Negotiated, not up, and setup_timeout has passed (Janus's clock when known)."""
        if attempt.negotiated_at is None or attempt.outcome is not None:
            return False
        timeout = self.setup_timeout()
        if at_us and attempt.negotiated_us:
            return (at_us - attempt.negotiated_us) / 1e6 >= timeout
        return now - attempt.negotiated_at >= timeout

    def _fail(self, server: Server, connection: Connection, stage: str) -> None:
        attempt = connection.attempt
        public_ip = server.info.public_ip if server.info is not None else None
        cause = failure_cause(
            list(attempt.local.values()), list(attempt.remote.values()), public_ip
        )
        attempt.outcome = "failed"
        connection.failure = (stage, cause)
        _bump(self.server(server.name).failures, (stage, cause))
        connection.tell((0, f"failed: {stage}, {cause}"))

    def tick(self, servers: Mapping[str, Server], now: float) -> int:
        """Count stalled attempts (no webrtcup within setup_timeout): Janus says nothing of
        them. Returns how many were found."""
        self.last_now = max(self.last_now, now)
        found = 0
        for ref, attempt in list(self.pending.items()):
            connection = self.connections.get(ref)
            if connection is None or connection.attempt is not attempt or attempt.outcome:
                del self.pending[ref]  # gone, renegotiated or settled since
                continue
            server = servers.get(ref[0])
            if server is not None and self._overdue(server, attempt, now):
                self._fail(server, connection, "stalled")
                del self.pending[ref]
                found += 1
        return found

    # --- removal -------------------------------------------------------------------------------

    def _on_handle_removed(self, server: Server, handle: Handle, reason: str) -> None:
        ref = (server.name, handle.session_id, handle.handle_id)
        self.pending.pop(ref, None)
        connection = self.connections.pop(ref, None)
        if connection is None:
            return
        # Destroyed before the timeout is no failure; after it (and not counted yet), stalled.
        attempt = connection.attempt
        by_janus = self._overdue(server, attempt, float("-inf"), server.last_event_timestamp)
        if by_janus or self._overdue(server, attempt, self.last_now):
            self._fail(server, connection, "stalled")

    def _forget_server(self, server: Server) -> None:
        for ref in [r for r in self.connections if r[0] == server.name]:
            del self.connections[ref]
        for ref in [r for r in self.pending if r[0] == server.name]:
            del self.pending[ref]

    def of(self, server: Server, key: tuple[int, int] | None) -> Connection | None:
        return self.connections.get((server.name, *key)) if key is not None else None
