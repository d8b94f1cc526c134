"""monitor.decode.candidates: candidate strings of Janus 1.1.2 events and SDP, and scopes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode.candidates import (
    Candidate,
    address_scope,
    candidates_in_sdp,
    parse_candidate,
)
from tests.conftest import events_of, scenarios


def test_every_fixture_candidate_parses() -> None:
    """Every local and remote candidate Janus 1.1.2 sent in the fixtures parses, with a
    known type and transport."""
    from monitor.decode.records import CandidateEvent

    seen = 0
    for scenario in scenarios():
        for event in events_of(scenario):
            if isinstance(event.body, CandidateEvent):
                candidate = parse_candidate(event.body.candidate)
                assert candidate is not None, event.body.candidate
                assert candidate.type in {"host", "srflx", "prflx", "relay"}
                assert candidate.transport in {"udp", "tcp"}
                seen += 1
    assert seen > 0


def test_a_local_candidate_string() -> None:
    """Janus's own format: foundation, component, transport, priority, address, port, type."""
    assert parse_candidate("1 1 udp 2015363583 127.0.0.1 33162 typ host") == Candidate(
        "1", 1, "udp", 2015363583, "127.0.0.1", 33162, "host"
    )


def test_related_address_tcptype_and_prefixes() -> None:
    """srflx with raddr/rport, TCP with tcptype, and the candidate: / a=candidate: prefixes."""
    srflx = parse_candidate(
        "candidate:842163049 1 udp 1677729535 203.0.113.7 41370 typ srflx raddr 192.168.1.5 "
        "rport 41370 generation 0 ufrag x network-cost 999"
    )
    assert srflx is not None
    assert (srflx.type, srflx.related_address, srflx.related_port) == (
        "srflx",
        "192.168.1.5",
        41370,
    )
    tcp = parse_candidate("a=candidate:1 1 TCP 1518280447 10.0.0.2 9 typ host tcptype active")
    assert tcp is not None and (tcp.transport, tcp.tcptype, tcp.scope) == (
        "tcp",
        "active",
        "private",
    )


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "1 1 udp x 1.2.3.4 5 typ host", "1 1 udp 1 1.2.3.4 5 type host", "x" * 2000],
)
def test_what_is_not_a_candidate(text: str) -> None:
    """Malformed or oversized strings are None, never an exception."""
    assert parse_candidate(text) is None


def test_candidates_in_an_sdp() -> None:
    """The a=candidate lines of an SDP, mDNS names included, other lines ignored."""
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2122260223 3f2a1c7e-9a1b-4c2d.local 54400 typ host\r\n"
        "a=candidate:bad\r\n"
        "a=candidate:2 1 udp 1686052607 198.51.100.20 54400 typ srflx raddr 0.0.0.0 rport 0\r\n"
        "a=end-of-candidates\r\n"
    )
    found = list(candidates_in_sdp(sdp))
    assert [(c.type, c.scope) for c in found] == [("host", "mdns"), ("srflx", "private")]


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("8.8.8.8", "public"),
        ("2001:4860:4860::8888", "public"),
        ("10.255.255.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("198.51.100.20", "private"),  # documentation space: not reachable from the internet
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.10.10", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("::ffff:192.168.0.1", "private"),
        ("3f2a1c7e-9a1b-4c2d-8e3f-000000000001.local", "mdns"),
        ("host.example.com", "unknown"),
        ("0.0.0.0", "unknown"),
    ],
)
def test_address_scopes(address: str, scope: str) -> None:
    """Each address class SPEC's ICE causes rely on maps to its scope."""
    assert address_scope(address) == scope


def _lines_way(sdp: str) -> list[Candidate]:
    """The plain reading candidates_in_sdp must match: splitlines, then each a=candidate."""
    found = [parse_candidate(line) for line in sdp.splitlines() if line.startswith("a=candidate:")]
    return [candidate for candidate in found if candidate is not None]


LINE = "a=candidate:1 1 udp 2122260223 127.0.0.1 40001 typ host generation 0"
BREAKS = ["\r\n", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", " "]


@given(st.lists(st.tuples(st.sampled_from([LINE, "a=mid:0", "a=candidate:bad", "xa=candidate:1",
                                           LINE.replace("40001", "40002"), ""]),
                          st.sampled_from(BREAKS)), max_size=12))  # fmt: skip
def test_sdp_candidates_are_found_on_every_kind_of_line_break(parts: list[tuple[str, str]]) -> None:
    """However the SDP's lines are broken (CRLF, LF, CR or the other breaks splitlines knows),
    the scan finds exactly the candidates a line-by-line reading does."""
    sdp = "".join(line + brk for line, brk in parts)
    assert list(candidates_in_sdp(sdp)) == _lines_way(sdp)
