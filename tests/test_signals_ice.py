"""monitor.signals.ice on real Janus 1.1.2 captures (30-ice-*, 10-media, 40-reuse) and on
rewritten candidates: stage, cause, setup time, and what is not a failure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from monitor.decode.candidates import parse_candidate
from monitor.decode.events import decode_event
from monitor.decode.fields import DecodeNotes
from monitor.signals import Signals
from monitor.signals.ice import IceSignal
from monitor.signals.ice_cause import failure_cause
from monitor.state import RemovalHooks, Router, State, membership_table
from tests.conftest import body_paths, items_of
from tests.test_state import SERVER


def watched(timeout: float = 20.0) -> tuple[State, IceSignal]:
    hooks, router = RemovalHooks(), Router()
    signals = Signals(ice=IceSignal(lambda: timeout))
    signals.register(router, hooks)
    state = State(targets=(SERVER,), table=membership_table(router), hooks=hooks)
    return state, signals.ice


def raw_items(scenario: str) -> list[dict[str, Any]]:
    return [item for path in body_paths(scenario) for item in items_of(path)]


def replay(
    scenario: str, items: list[dict[str, Any]] | None = None, timeout: float = 20.0
) -> IceSignal:
    state, ice = watched(timeout)
    for item in items if items is not None else raw_items(scenario):
        state.apply(decode_event(item, DecodeNotes()), 1000.0)
    return ice


def failures(ice: IceSignal) -> dict[tuple[str, str], int]:
    return ice.counters[SERVER].failures


def test_a_dead_remote_port_is_an_ice_failure() -> None:
    """30-ice-deadport: ICE failed, then hangup "ICE failed": stage ice. Janus offered only
    127.0.0.1 (loopback), which is the first cause that applies."""
    assert failures(replay("30-ice-deadport")) == {("ice", "server_private_candidates"): 1}


def test_an_mdns_only_client_stalls() -> None:
    """30-ice-mdns: the only remote candidate is a .local name Janus drops; nothing happens
    until the session is destroyed 27 s later: stalled, client_mdns_only."""
    assert failures(replay("30-ice-mdns")) == {("stalled", "client_mdns_only"): 1}


def test_destroyed_before_the_timeout_is_no_failure() -> None:
    """The same mDNS capture with a 60 s setup_timeout: destroyed first, so not counted."""
    assert failures(replay("30-ice-mdns", timeout=60.0)) == {}


def test_a_private_nat_1_1_mapping_is_a_dtls_failure() -> None:
    """30-ice-nat11: ICE went ready, DTLS never finished (hangup "DTLS timeout"): stage dtls;
    Janus advertised only 10.255.255.1."""
    ice = replay("30-ice-nat11")
    assert failures(ice) == {("dtls", "server_private_candidates"): 1}
    counters = ice.counters[SERVER]
    assert counters.pairs == {("host", "host"): 1}
    assert counters.hangups == {"DTLS timeout": 1}
    assert counters.candidates[("local", "host", "private")] == 1
    assert counters.states["ready"] == 1


def test_media_scenarios_come_up_with_setup_times_and_no_failure() -> None:
    """10-media and 40-reuse (a republish on one handle): every PeerConnection comes up, each
    setup time is measured once, by role, and nothing is a failure."""
    for scenario, expected in (("10-media", {"publisher": 1, "subscriber": 1}),
                               ("40-reuse", {"publisher": 3, "subscriber": 1})):  # fmt: skip
        ice = replay(scenario)
        counters = ice.counters[SERVER]
        assert counters.failures == {}, scenario
        counts = {role: sum(h.counts) for role, h in counters.setup.items()}
        assert counts == expected, (scenario, counts)
        assert all(0 < h.total / sum(h.counts) < 2.0 for h in counters.setup.values())


def rewritten(scenario: str, local: str | None, remote: str | None) -> list[dict[str, Any]]:
    """The capture with 127.0.0.1 in Janus's (local) or the client's (remote) candidates and
    SDPs replaced (strings only: nothing is sent anywhere)."""
    items = copy.deepcopy(raw_items(scenario))
    for item in items:
        body = item.get("event") or {}
        if item.get("type") == 16 and item.get("subtype") == 2 and local:
            body["local-candidate"] = body["local-candidate"].replace("127.0.0.1", local)
        if item.get("type") == 16 and item.get("subtype") == 3 and remote:
            body["remote-candidate"] = body["remote-candidate"].replace("127.0.0.1", remote)
        if item.get("type") == 8:
            new = local if body.get("owner") == "local" else remote
            if new:
                body["jsep"]["sdp"] = body["jsep"]["sdp"].replace("127.0.0.1", new)
    return items


@pytest.mark.parametrize(
    ("local", "remote", "cause"),
    [
        ("8.8.4.4", "192.168.1.20", "client_private_candidates"),
        ("8.8.4.4", "100.64.7.1", "client_private_candidates"),
        ("8.8.4.4", "169.254.3.3", "client_private_candidates"),
        ("2001:4860:4860::8844", "fd12::7", "client_private_candidates"),
        ("8.8.4.4", "9.9.9.9", "unknown"),
        ("172.16.5.5", "9.9.9.9", "server_private_candidates"),
        ("100.100.1.1", "9.9.9.9", "server_private_candidates"),
    ],
)
def test_each_cause_on_rewritten_candidates(local: str, remote: str, cause: str) -> None:
    """30-ice-deadport with its candidate addresses rewritten: the cause follows SPEC's order."""
    ice = replay("30-ice-deadport", rewritten("30-ice-deadport", local, remote))
    assert failures(ice) == {("ice", cause): 1}


def test_no_remote_candidates_and_a_private_public_ip() -> None:
    """Without any remote candidate the cause is no_remote_candidates; a public-ip that is
    itself private makes Janus's side the cause even when its candidates look public."""
    public = [parse_candidate("1 1 udp 2015363583 8.8.4.4 5000 typ host")]
    remote = [parse_candidate("1 1 udp 2015363583 9.9.9.9 5000 typ host")]
    local_scopes = [c.scope for c in public if c is not None]
    remote_scopes = [c.scope for c in remote if c is not None]
    assert local_scopes == remote_scopes == ["public"]
    assert failure_cause(local_scopes, [], None) == "no_remote_candidates"
    assert failure_cause(local_scopes, remote_scopes, "10.0.0.5") == "server_private_candidates"
    assert failure_cause(local_scopes, remote_scopes, "8.8.4.4") == "unknown"


def test_a_stall_is_counted_by_the_clock_once() -> None:
    """tick() counts a negotiated attempt without webrtcup once setup_timeout has passed on
    the daemon's clock, and only once (the later destroy does not count it again)."""
    state, ice = watched(timeout=20.0)
    items = raw_items("30-ice-mdns")
    destroy = next(
        i for i, item in enumerate(items) if item.get("event", {}).get("name") == "destroyed"
    )
    for item in items[:destroy]:
        state.apply(decode_event(item, DecodeNotes()), 1000.0)
    assert ice.tick(state.servers, 1019.0) == 0
    assert ice.tick(state.servers, 1021.0) == 1
    assert ice.tick(state.servers, 1030.0) == 0
    for item in items[destroy:]:
        state.apply(decode_event(item, DecodeNotes()), 1031.0)
    assert failures(ice) == {("stalled", "client_mdns_only"): 1}
    assert ice.connections == {}


def test_handle_info_candidates_count_once_beside_events() -> None:
    """A full handle_info's webrtc.ice candidate lists are read (for a daemon that missed the
    events); the same candidates seen again are not counted twice."""
    import json

    from monitor.decode.polls import poll_event, read_handle
    from tests.conftest import ADMIN
    from tests.test_state import PUB_HANDLE_10, PUB_SESSION_10

    state, ice = watched()
    state.apply(decode_event({"emitter": SERVER, "type": 2, "session_id": PUB_SESSION_10,
                              "handle_id": PUB_HANDLE_10,
                              "event": {"name": "attached", "plugin": "janus.plugin.videoroom"}},
                             DecodeNotes()), 1.0)  # fmt: skip
    reply = json.loads(
        (ADMIN / "10-media" / "003-handle_info-pub-4725100285792786.json").read_text()
    )
    polled = read_handle(PUB_SESSION_10, PUB_HANDLE_10, reply["response"]["info"], asked_at=2.0)
    assert polled.local_candidates and polled.remote_candidates
    for _ in range(2):
        state.apply(poll_event(SERVER, polled), 2.0)
    assert ice.counters[SERVER].candidates == {
        ("local", "host", "loopback"): 1,
        ("remote", "host", "loopback"): 1,  # listed twice by Janus, one candidate
    }
