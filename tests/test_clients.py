"""monitor.janus.clients: one Admin and one Janus API client per target, shared, kept in step."""

from __future__ import annotations

import aiohttp
import pytest

from monitor.janus.clients import JanusClients, request_timeout
from monitor.janus.errors import JanusUnavailable
from monitor.janus.wire import RequestRecord
from tests.conftest import make_config

TARGETS = """
targets:
  - {name: a, admin_url: "http://127.0.0.1:7088/admin", janus_url: "http://127.0.0.1:8088/janus"}
  - {name: b, admin_url: "http://127.0.0.1:7089/admin"}
  - {name: c}
"""


async def test_each_target_gets_the_clients_its_urls_allow() -> None:
    """admin_url gives an Admin client, janus_url a Janus API client; none without them."""
    async with aiohttp.ClientSession() as http:
        clients = JanusClients(http)
        clients.sync(make_config(TARGETS).targets)
        assert clients.admin("a") is not None and clients.api("a") is not None
        assert clients.admin("b") is not None and clients.api("b") is None
        assert clients.admin("c") is None and clients.api("c") is None
        assert clients.admin("unknown") is None


async def test_a_reload_keeps_unchanged_clients_and_rebuilds_changed_ones() -> None:
    """The same client object survives a reload that leaves its target alone (so its one
    request in flight stays the only one); a changed target gets new clients; a removed
    target loses them."""
    async with aiohttp.ClientSession() as http:
        clients = JanusClients(http)
        clients.sync(make_config(TARGETS).targets)
        a, b = clients.admin("a"), clients.admin("b")
        changed = TARGETS.replace("7089", "7090").replace("  - {name: c}\n", "")
        clients.sync(make_config(changed).targets)
        assert clients.admin("a") is a
        assert clients.admin("b") is not b
        assert clients.admin("b") is not None and clients.admin("b").url.endswith(":7090/admin")  # type: ignore[union-attr]
        clients.sync(())
        assert clients.admin("a") is None


async def test_admin_requests_reach_the_targets_observer() -> None:
    """Each Admin client reports to the observer the wiring gave for its target."""
    seen: list[tuple[str, RequestRecord]] = []
    async with aiohttp.ClientSession() as http:
        clients = JanusClients(http, lambda name: lambda record: seen.append((name, record)))
        target = make_config(
            "targets: [{name: a, admin_url: 'http://127.0.0.1:9/admin', poll_interval: 1s}]"
        ).targets
        clients.sync(target)
        admin = clients.admin("a")
        assert admin is not None
        with pytest.raises(JanusUnavailable):  # nothing listens on 127.0.0.1:9
            await admin.info()
    assert [(name, record.request, record.error) for name, record in seen] == [
        ("a", "info", "unavailable")
    ]
    assert request_timeout(target[0]) == 1.0
