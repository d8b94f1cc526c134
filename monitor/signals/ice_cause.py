"""Why a PeerConnection never came up: the first cause that applies, in SPEC's order.

1. ``client_mdns_only``: every remote candidate is an mDNS ``.local`` name (browsers hide
   their addresses so; Janus with ignore_mdns drops them, so only the SDP shows them);
2. ``no_remote_candidates``;
3. ``server_private_candidates``: every address Janus offered is private, CGNAT, loopback or
   link-local, or the ``public-ip`` it reports (a nat_1_1_mapping) is itself one of those;
4. ``client_private_candidates``: the client offered nothing reachable from the internet;
5. ``unknown``.
"""

from __future__ import annotations

from collections.abc import Collection

from monitor.decode.candidates import address_scope

NOT_PUBLIC = frozenset(("private", "cgnat", "loopback", "link_local"))
CAUSES = (
    "client_mdns_only",
    "no_remote_candidates",
    "server_private_candidates",
    "client_private_candidates",
    "unknown",
)


def failure_cause(local: Collection[str], remote: Collection[str], public_ip: str | None) -> str:
    """The cause, from the address scopes of the candidates on each side."""
    if remote and all(scope == "mdns" for scope in remote):
        return "client_mdns_only"
    if not remote:
        return "no_remote_candidates"
    server_private = bool(local) and all(scope in NOT_PUBLIC for scope in local)
    if server_private or (public_ip and address_scope(public_ip) in NOT_PUBLIC):
        return "server_private_candidates"
    if all(scope in NOT_PUBLIC or scope == "mdns" for scope in remote):
        return "client_private_candidates"
    return "unknown"
