"""ICE candidates: parsed from event strings and SDP lines, and what kind of address each is.

Janus sends local candidates as ``<foundation> <component> <transport> <priority> <address>
<port> typ <type> [raddr <a> rport <p>] [tcptype <t>]`` and remote ones as the client sent
them, minus any ``candidate:`` prefix (janus-protocol.md §1.3); SDP carries them as
``a=candidate:...`` lines. mDNS names (``<uuid>.local``) only show up in SDP: Janus drops or
resolves them before any event. Nothing here sends a packet to the addresses it reads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import lru_cache

import msgspec

CANDIDATE_TYPES = frozenset(("host", "srflx", "prflx", "relay"))
SCOPES = ("public", "private", "cgnat", "loopback", "link_local", "mdns", "unknown")

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_MAX_LINE = 1024


class Candidate(msgspec.Struct, frozen=True, gc=False):
    """A msgspec Struct, not a frozen dataclass: made for every candidate line of every SDP,
    and a frozen dataclass sets each of its ten fields through object.__setattr__."""

    foundation: str
    component: int
    transport: str  # udp | tcp (lower case)
    priority: int
    address: str  # an IP literal, or a hostname such as an mDNS <uuid>.local
    port: int
    type: str  # host | srflx | prflx | relay (lower case; anything else is kept as sent)
    related_address: str | None = None
    related_port: int | None = None
    tcptype: str | None = None

    @property
    def scope(self) -> str:
        return address_scope(self.address)


def parse_candidate(text: str) -> Candidate | None:
    """One candidate, from an event string or an SDP line; None when it is not one."""
    if len(text) > _MAX_LINE:
        return None
    line = text.strip()
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    parts = line.split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    foundation, component, transport, priority, address, port = parts[:6]
    if not (component.isdecimal() and priority.isdecimal() and port.isdecimal()):
        return None
    kind = parts[7].lower()
    if len(parts) < 10:  # a host candidate has no extras
        return Candidate(
            foundation, int(component), transport.lower(), int(priority), address, int(port), kind
        )
    extras = dict(zip(parts[8::2], parts[9::2], strict=False))
    related_port = extras.get("rport")
    return Candidate(
        foundation,
        int(component),
        transport.lower(),
        int(priority),
        address,
        int(port),
        kind,
        extras.get("raddr"),
        int(related_port) if related_port and related_port.isdecimal() else None,
        extras.get("tcptype"),
    )


# The line breaks str.splitlines() knows: a candidate line starts the SDP or follows one, and
# ends at the next. Found with str.find (C) instead of a split and a startswith per line (an
# offer is 40-90 lines, a few of them candidates).
_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_LINE_END = re.compile("[" + "".join(sorted(_BREAKS)) + "]")
_MARK = "a=candidate:"


def candidates_in_sdp(sdp: str) -> Iterator[Candidate]:
    """Every ``a=candidate`` line of an SDP that parses."""
    start = sdp.find(_MARK)
    while start != -1:
        end_match = _LINE_END.search(sdp, start)
        end = end_match.start() if end_match else len(sdp)
        if start == 0 or sdp[start - 1] in _BREAKS:
            candidate = parse_candidate(sdp[start:end])
            if candidate is not None:
                yield candidate
        start = sdp.find(_MARK, end)


@lru_cache(maxsize=4096)  # 26 us through ipaddress; an address shows up again and again
def address_scope(address: str) -> str:
    """public, private (RFC 1918, IPv6 ULA and other non-global space), cgnat (RFC 6598),
    loopback, link_local, mdns (a ``.local`` name) or unknown (another name, or unspecified)."""
    host = address.strip("[]").rstrip(".").lower()
    if host.endswith(".local"):
        return "mdns"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return "unknown"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip in _CGNAT:
        return "cgnat"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "private"
    return "public" if ip.is_global else "private"
