"""Handles counted per plugin by state as they come, go and learn their plugin (what the
scrape reads), checked against a walk over the handles."""

from __future__ import annotations

from monitor.state import State
from tests.conftest import events_of, scenarios
from tests.test_state import SERVER, ev, replay


def plugins_walked(state: State) -> dict[str, dict[str | None, int]]:
    counts: dict[str, dict[str | None, int]] = {}
    for name, server in state.servers.items():
        for handle in server.handles():
            by_plugin = counts.setdefault(name, {})
            by_plugin[handle.plugin] = by_plugin.get(handle.plugin, 0) + 1
    return counts


def test_handles_per_plugin_are_kept_as_a_walk_would_count_them() -> None:
    """After every event of every scenario, then a sweep and a core restart, each server's
    plugin_handles equals a count over its handles (what the scrape used to walk)."""
    checked = 0
    for scenario in scenarios():
        state = State(targets=(SERVER,))
        for event in events_of(scenario):
            state.apply(event, 1000.0)
            kept = {n: s.plugin_handles for n, s in state.servers.items() if s.plugin_handles}
            assert kept == plugins_walked(state), (scenario, event)
            checked += bool(kept)
        state.sweep(1000.0 + 10 * state.limits.stale_after)
        assert all(not s.plugin_handles for s in state.servers.values())
    assert checked > 1000
    state = replay("10-media", upto="00030")
    assert state.servers[SERVER].plugin_handles
    state.apply(ev({"name": "started"}, 256, subtype=1), 1001.0)
    assert state.servers[SERVER].plugin_handles == {} == plugins_walked(state).get(SERVER, {})
