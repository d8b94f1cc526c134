"""Bounded memory: sessions, handles, rooms and publishers that come and go leave nothing
behind in state, signals or the GC heap once they are gone."""

from __future__ import annotations

import gc

import orjson

from bench.synth import Copier
from monitor.app import Runtime, build_runtime
from monitor.state.store import TOMBSTONE_MARGIN
from tests.conftest import FakeClock, make_config

SERVER = "janus-lab-1"
RATE = 20_000.0  # events per (fake) second, as the 1 M-event bench replays them


def replay(copies: int, clock: FakeClock, runtime: Runtime) -> int:
    """Replay ``copies`` lifecycles of the 10-media capture, 50 at a time interleaved, at
    RATE on the fake clock, sweeping and ticking as the daemon does; returns events sent."""
    copier = Copier()
    pipeline, state, signals = runtime.pipeline, runtime.state, runtime.signals
    sent, next_sweep = 0, clock.now + 1.0
    for first in range(0, copies, 50):
        group = [copier.copy(first + i) for i in range(50)]
        for index in range(len(copier.lines)):
            batch = [orjson.loads(events[index]) for events in group]
            result = pipeline.process(batch)
            assert result.rejected == 0, result.errors
            sent += len(batch)
            clock.now += len(batch) / RATE
            if clock.now >= next_sweep:
                state.sweep(clock.now)
                signals.tick(state.servers, clock.now)
                next_sweep = clock.now + 1.0
    return sent


def test_a_long_replay_leaves_state_signals_and_the_heap_as_they_were() -> None:
    """2 000 lifecycles (262 k events): tracked state and every signal's per-handle data go
    back to empty, tombstones are bounded by what TOMBSTONE_MARGIN holds, and the GC heap
    ends within 1% of where it was after the first 200."""
    clock = FakeClock(1000.0)
    runtime = build_runtime(make_config(f"targets: [{{name: {SERVER}}}]"), None)
    runtime.pipeline.monotonic = clock
    replay(200, clock, runtime)
    clock.now += 2 * TOMBSTONE_MARGIN
    runtime.state.sweep(clock.now)
    gc.collect()
    early = len(gc.get_objects())
    sent = replay(1_800, clock, runtime)
    clock.now += 2 * TOMBSTONE_MARGIN
    runtime.state.sweep(clock.now)
    gc.collect()
    late = len(gc.get_objects())
    assert sent > 200_000
    assert runtime.state.tracked() == {
        "sessions": 0, "handles": 0, "publishers": 0, "subscribers": 0, "rooms": 0,
    }  # fmt: skip
    server = runtime.state.servers[SERVER]
    assert (len(server.gone_sessions), len(server.gone_handles), len(server.gone_publishers)) == (
        0, 0, 0,
    )  # fmt: skip
    signals = runtime.signals
    assert not signals.bitrate.handles and not signals.ice.connections
    assert not signals.ice.pending and not signals.reuse.handles
    assert not signals.quality.downstream
    assert late <= early * 1.01, (early, late)


def test_tombstones_in_flight_are_bounded_by_the_margin() -> None:
    """Mid-replay, no more tombstones are held than TOMBSTONE_MARGIN seconds of destroyed ids
    at RATE (two sessions and handles per 131-event lifecycle), plus one sweep interval."""
    clock = FakeClock(1000.0)
    runtime = build_runtime(make_config(f"targets: [{{name: {SERVER}}}]"), None)
    runtime.pipeline.monotonic = clock
    replay(1_000, clock, runtime)
    server = runtime.state.servers[SERVER]
    lifecycles_per_second = RATE / len(Copier().lines)
    bound = 2 * lifecycles_per_second * (TOMBSTONE_MARGIN + 1.0)
    assert 0 < len(server.gone_sessions) <= bound, (len(server.gone_sessions), bound)
    assert len(server.gone_handles) <= bound
