"""The scope: with amqp set, state, polling and remediation cover the owned targets only."""

from __future__ import annotations

from typing import cast

from monitor.app import state_limits
from monitor.config import LiveConfig
from monitor.decode.records import Event
from monitor.fleet.ownership import Ownership
from monitor.polling.schedule import Polling
from monitor.scope import Scope
from monitor.state import State
from monitor.telemetry import Telemetry
from tests.conftest import events_of, make_config
from tests.fakes import FakePolling

CONFIG = make_config(
    "amqp: {url: 'amqp://127.0.0.1'}\n"
    "targets:\n"
    "  - {name: janus-lab-1, admin_url: 'http://127.0.0.1:7088/admin'}\n"
    "  - {name: janus-2, admin_url: 'http://127.0.0.1:7089/admin'}\n"
    "  - {name: janus-3}\n"
)


def scoped() -> tuple[Scope, State, Ownership, FakePolling]:
    ownership = Ownership("me", 2, 1.0, 0.0)
    ownership.connected_now(0.0)
    ownership.subscribed(0)
    ownership.subscribed(1)
    state = State(state_limits(CONFIG))
    scope = Scope(LiveConfig(CONFIG), state, Telemetry(), state_limits, ownership)
    polling = FakePolling()
    scope.polling = cast(Polling, polling)
    scope.apply()
    return scope, state, ownership, polling


def apply(state: State, events: list[Event]) -> None:
    assert not state.apply_all(events, 1.0)


def test_nothing_is_covered_until_a_shard_delivers() -> None:
    """A fleet member covers no target before it owns a shard."""
    scope, state, _, polling = scoped()
    assert scope.names(CONFIG) == ()
    assert polling.targets == ()
    assert not any(s.configured for s in state.servers.values())


def test_owned_targets_are_configured_and_polled() -> None:
    """A target learned on an owned shard is configured in state and gets a poller."""
    scope, state, ownership, polling = scoped()
    ownership.delivered(0, {"janus-2"}, 1.0)
    scope.apply()
    assert [t.name for t in polling.targets] == ["janus-2"]
    assert state.servers["janus-2"].configured


def test_a_lost_emitter_loses_its_state_at_once() -> None:
    """When another daemon takes the shard over, the emitter's state goes with it."""
    scope, state, ownership, polling = scoped()
    ownership.delivered(0, {"janus-lab-1"}, 1.0)
    scope.apply()
    apply(state, events_of("10-media", upto="00034"))
    assert state.servers["janus-lab-1"].sessions
    ownership.hand_back(0)
    scope.apply()
    assert "janus-lab-1" not in state.servers
    assert polling.targets == ()


def test_a_webhook_emitter_is_not_dropped_by_the_scope() -> None:
    """An emitter no shard carried (webhook delivery) stays: it is this daemon's alone."""
    scope, state, ownership, _ = scoped()
    apply(state, events_of("10-media", upto="00034"))
    ownership.delivered(1, {"janus-2"}, 1.0)
    scope.apply()
    ownership.disconnected_now(2.0)
    scope.apply()
    assert "janus-lab-1" in state.servers
    assert "janus-2" not in state.servers


def test_remediation_waits_for_the_takeover_poll() -> None:
    """An owned target with an Admin API is remediable only after a poll rebuilt its state;
    one without an Admin API at once."""
    scope, _, ownership, polling = scoped()
    ownership.delivered(0, {"janus-lab-1", "janus-3"}, 1.0)
    scope.apply()
    assert [t.name for t in scope.remediable(CONFIG).targets] == ["janus-3"]
    polling.completed.add("janus-lab-1")
    assert [t.name for t in scope.remediable(CONFIG).targets] == ["janus-lab-1", "janus-3"]


def test_without_amqp_everything_is_covered() -> None:
    """The single-daemon path is unchanged: every target, remediable as configured."""
    config = make_config("targets: [{name: a}, {name: b}]")
    scope = Scope(LiveConfig(config), State(), Telemetry(), state_limits)
    assert scope.names(config) == ("a", "b")
    assert scope.remediable(config) is config
