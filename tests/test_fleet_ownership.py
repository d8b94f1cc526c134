"""Ownership learned from deliveries, and the hand-back balance, on a model of RabbitMQ 3.10's
single-active-consumer (the first consumer in line is active; a cancel moves delivery to the
next one; a new subscription joins the back of the line)."""

from __future__ import annotations

import random

import pytest

from monitor.fleet.ownership import (
    ACTIVE_TIMEOUT_PROBES,
    MEMBER_TIMEOUT_PROBES,
    SETTLE_PROBES,
    Ownership,
)

PROBE = 1.0


def fresh(member: str = "a", shards: int = 8, now: float = 0.0) -> Ownership:
    ownership = Ownership(member, shards, PROBE, now)
    ownership.connected_now(now)
    for index in range(shards):
        ownership.subscribed(index)
    return ownership


def test_a_shard_is_owned_from_its_first_delivery() -> None:
    """Subscribing owns nothing; the first delivery makes the shard and its emitters owned."""
    ownership = fresh()
    assert ownership.owned_shards() == []
    assert ownership.delivered(3, {"janus-1"}, 1.0)
    assert ownership.owned_shards() == [3]
    assert ownership.owned_emitters() == {"janus-1"}
    assert ownership.counters.takeovers == 1


def test_a_lost_connection_drops_everything_at_once() -> None:
    """Nothing stays owned without a connection; the gap is counted when it comes back."""
    ownership = fresh()
    ownership.delivered(0, {"janus-1"}, 1.0)
    ownership.disconnected_now(10.0)
    assert ownership.owned_emitters() == frozenset() and not ownership.ready
    assert ownership.disconnected_for(12.5) == pytest.approx(2.5)
    ownership.connected_now(14.0)
    assert ownership.counters.connection_losses == 1
    assert ownership.disconnected_for(20.0) == pytest.approx(4.0)


def test_the_first_connection_is_no_gap() -> None:
    """Time before the first connection is not counted as a gap (no events were lost)."""
    ownership = Ownership("a", 2, PROBE, 0.0)
    ownership.connected_now(30.0)
    assert ownership.disconnected_for(31.0) == 0.0


def test_events_decide_an_emitters_shard_over_probes() -> None:
    """A probe for a name whose events arrive elsewhere (route_key not the server_name) does
    not move the emitter; with no events for a while, probes decide again."""
    ownership = fresh()
    ownership.delivered(2, {"janus-1"}, 1.0)
    ownership.delivered(5, {"janus-1"}, 2.0, probe=True)
    assert ownership.emitter_shard["janus-1"] == 2
    ownership.delivered(5, {"janus-1"}, 200.0, probe=True)
    assert ownership.emitter_shard["janus-1"] == 5


def test_a_delivery_after_a_reconnect_proves_the_consumer() -> None:
    """Consumers restored by the robust connection deliver before it reports the reconnect:
    those deliveries count, they are not sent back in a loop."""
    ownership = fresh()
    ownership.disconnected_now(1.0)
    assert ownership.delivered(0, {"janus-1"}, 2.0)
    assert ownership.owned_shards() == [0] and ownership.counters.requeued == 0


def test_a_silent_shard_stops_being_owned() -> None:
    """Probes reach an active consumer every interval: silence means the broker moved the
    shard (a channel reopened behind our back), so it is owned no more."""
    ownership = fresh()
    ownership.delivered(0, {"janus-1"}, 1.0)
    assert not ownership.expire(1.0 + ACTIVE_TIMEOUT_PROBES * PROBE - 0.1)
    assert ownership.expire(1.0 + ACTIVE_TIMEOUT_PROBES * PROBE + 0.1)
    assert ownership.owned_emitters() == frozenset()


def test_a_shard_being_handed_back_sends_deliveries_back() -> None:
    """Once handed back, the shard is not owned and what still arrives goes back to the queue."""
    ownership = fresh()
    ownership.delivered(1, {"janus-1"}, 1.0)
    ownership.hand_back(1)
    assert ownership.owned_emitters() == frozenset()
    assert not ownership.delivered(1, {"janus-1"}, 2.0)
    assert ownership.counters.requeued == 1


def test_unknown_emitters_are_forgotten_but_targets_are_kept() -> None:
    """The learned shard of a quiet emitter goes unless it is a configured target."""
    ownership = fresh()
    ownership.delivered(0, {"janus-1", "stray"}, 1.0)
    ownership.forget_emitters(keep={"janus-1"}, horizon=5.0)
    assert ownership.owned_emitters() == {"janus-1"}


def test_members_time_out() -> None:
    """A member not heard from for several probe intervals is no longer live."""
    ownership = fresh("a")
    ownership.heard("b", True, 0.0)
    assert ownership.live_members(1.0) == ("a", "b")
    assert ownership.live_members(MEMBER_TIMEOUT_PROBES * PROBE + 0.5) == ("a",)


def test_no_hand_back_before_the_members_settle() -> None:
    """A new member gets nothing until the member set has been stable for a while."""
    ownership = fresh("a", shards=4)
    for index in range(4):
        ownership.delivered(index, set(), 0.0)
    ownership.heard("b", True, 0.5)
    assert ownership.to_hand_back(1.0) == []
    later = 0.5 + SETTLE_PROBES * PROBE
    ownership.heard("b", True, later)
    assert ownership.to_hand_back(later) == [1, 3]  # b is second of (a, b): odd shards


def test_a_member_not_ready_gets_nothing() -> None:
    """A member still subscribing is not handed shards it could not take."""
    ownership = fresh("a", shards=4)
    for index in range(4):
        ownership.delivered(index, set(), 0.0)
    ownership.heard("b", False, 0.0)
    assert ownership.to_hand_back(10.0) == []


class Broker:
    """Single-active-consumer per shard queue, as RabbitMQ 3.10 quorum queues do it."""

    def __init__(self, shards: int) -> None:
        self.lines: list[list[str]] = [[] for _ in range(shards)]
        self.daemons: dict[str, Ownership] = {}

    def join(self, daemon: Ownership, order: list[int]) -> None:
        self.daemons[daemon.member] = daemon
        for index in order:
            self.lines[index].append(daemon.member)

    def kill(self, member: str) -> None:
        del self.daemons[member]
        for line in self.lines:
            if member in line:
                line.remove(member)

    def step(self, now: float) -> None:
        """One probe interval: probes reach the active consumers, heartbeats every member,
        and each daemon carries out its hand-backs."""
        for index, line in enumerate(self.lines):
            if line:
                self.daemons[line[0]].delivered(index, set(), now)
        for daemon in self.daemons.values():
            for other in self.daemons.values():
                if other is not daemon:
                    daemon.heard(other.member, other.ready, now)
        for daemon in self.daemons.values():
            for index in daemon.to_hand_back(now):
                daemon.hand_back(index)
                line = self.lines[index]
                line.remove(daemon.member)
                line.append(daemon.member)
                daemon.subscribed(index)

    def owners(self) -> list[list[str]]:
        return [[m for m, d in self.daemons.items() if index in d.owned_shards()]
                for index in range(len(self.lines))]  # fmt: skip


def settle(broker: Broker, start: float, steps: int = 60) -> float:
    now = start
    for _ in range(steps):
        now += PROBE
        broker.step(now)
    return now


@pytest.mark.parametrize(("members", "shards"), [(2, 8), (3, 8), (3, 16), (4, 7)])
@pytest.mark.parametrize("seed", range(5))
def test_shards_spread_evenly_and_have_one_owner(members: int, shards: int, seed: int) -> None:
    """However the daemons joined, every shard ends with one owner and each owns K/N +- 1."""
    rng = random.Random(seed)
    broker = Broker(shards)
    now = 0.0
    for n in range(members):
        order = list(range(shards))
        rng.shuffle(order)
        broker.join(fresh(f"d{n}", shards, now), order)
        now = settle(broker, now, steps=rng.randint(0, 5))
    now = settle(broker, now)
    owners = broker.owners()
    assert all(len(o) == 1 for o in owners), owners
    counts = [sum(1 for o in owners if o == [m]) for m in broker.daemons]
    assert max(counts) - min(counts) <= 1, counts


def test_a_killed_daemon_hands_over_and_balance_returns() -> None:
    """Killing a daemon moves its shards to the others at the next probe; when it is back,
    the shards spread out again, never with two owners at any step."""
    broker = Broker(8)
    broker.join(fresh("a", 8), list(range(8)))
    broker.join(fresh("b", 8), list(range(8)))
    now = settle(broker, 0.0)
    assert [len(o) for o in broker.owners()] == [1] * 8
    broker.kill("b")
    for _ in range(2 * MEMBER_TIMEOUT_PROBES):  # b's heartbeats stop, its timeout runs
        now += PROBE
        broker.step(now)
        assert broker.owners() == [["a"]] * 8  # nothing is handed back to the dead
    broker.join(fresh("b2", 8, now), list(range(8)))
    for _ in range(30):
        now += PROBE
        broker.step(now)
        assert all(len(o) <= 1 for o in broker.owners())
    counts = [sum(1 for o in broker.owners() if o == [m]) for m in ("a", "b2")]
    assert counts == [4, 4]
