"""The fleet's metrics and connection settings: what an owner and a non-owner export, and
how the broker URL and TLS options become a connection."""

from __future__ import annotations

import ssl

from prometheus_client import generate_latest

from monitor.fleet.ownership import Ownership
from monitor.ingest.amqp_wire import AMQP_HEARTBEAT, connection_url, tls_context
from monitor.metrics import build_registry
from monitor.metrics.fleet import FleetCollector
from monitor.telemetry import Telemetry
from tests.conftest import make_config, metric_samples, sample


def render(
    ownership: Ownership, targets: tuple[str, ...]
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    collector = FleetCollector(Telemetry(), ownership, lambda: targets, lambda: 5.0)
    return metric_samples(generate_latest(build_registry((collector,))).decode())


def test_an_owner_exports_ones_and_the_rest_zeros() -> None:
    """Owned shards and Janus are 1; the other shards and configured targets are 0."""
    ownership = Ownership("me", 3, 1.0, 0.0)
    ownership.connected_now(0.0)
    for index in range(3):
        ownership.subscribed(index)
    ownership.delivered(1, {"janus-a"}, 1.0)
    ownership.counters.messages["applied"] = 7
    samples = render(ownership, ("janus-a", "janus-b"))
    assert sample(samples, "janus_monitor_amqp_connected") == 1.0
    assert [sample(samples, "janus_monitor_shard_owned", shard=str(i)) for i in range(3)] == [
        0.0, 1.0, 0.0,
    ]  # fmt: skip
    assert sample(samples, "janus_monitor_emitter_owned", server="janus-a") == 1.0
    assert sample(samples, "janus_monitor_emitter_owned", server="janus-b") == 0.0
    assert sample(samples, "janus_monitor_amqp_messages_total", outcome="applied") == 7.0
    assert sample(samples, "janus_monitor_amqp_messages_total", outcome="rejected") == 0.0
    assert sample(samples, "janus_monitor_amqp_shard_takeovers_total") == 1.0


def test_a_disconnected_daemon_owns_nothing_and_counts_the_gap() -> None:
    """Without the broker: connected 0, every shard 0, the gap growing in seconds."""
    ownership = Ownership("me", 2, 1.0, 0.0)
    ownership.connected_now(0.0)
    ownership.subscribed(0)
    ownership.delivered(0, {"janus-a"}, 1.0)
    ownership.disconnected_now(2.0)
    samples = render(ownership, ("janus-a",))
    assert sample(samples, "janus_monitor_amqp_connected") == 0.0
    assert sample(samples, "janus_monitor_emitter_owned", server="janus-a") == 0.0
    assert sample(samples, "janus_monitor_amqp_disconnected_seconds_total") == 3.0
    assert sample(samples, "janus_monitor_amqp_connection_losses_total") == 1.0


def test_the_url_gets_a_heartbeat_unless_it_has_one() -> None:
    """A silent daemon is noticed by the broker within a few heartbeats; a URL's own wins."""
    plain = make_config("amqp: {url: 'amqp://u:p@127.0.0.1:5672/%2F'}").amqp
    own = make_config("amqp: {url: 'amqp://u:p@127.0.0.1/%2F?heartbeat=30'}").amqp
    assert plain is not None and own is not None
    assert connection_url(plain).query["heartbeat"] == str(AMQP_HEARTBEAT)
    assert connection_url(own).query["heartbeat"] == "30"


def test_tls_follows_the_scheme_and_verify_peer() -> None:
    """amqp:// has no TLS; amqps:// verifies the broker unless verify_peer is false."""
    plain = make_config("amqp: {url: 'amqp://127.0.0.1'}").amqp
    strict = make_config("amqp: {url: 'amqps://127.0.0.1'}").amqp
    loose = make_config("amqp: {url: 'amqps://127.0.0.1', tls: {verify_peer: false}}").amqp
    assert plain is not None and strict is not None and loose is not None
    assert tls_context(plain) is None
    context = tls_context(strict)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    unverified = tls_context(loose)
    assert unverified is not None and unverified.verify_mode == ssl.CERT_NONE
