"""Which shards and emitters this daemon owns, learned from what it receives; and the
balance: which shards it should hand back to the fleet member they belong to.

Single-active-consumer in RabbitMQ 3.10 tells a consumer nothing about being active. But the
active consumer stays active until it cancels or its channel closes, so a shard is owned from
its first delivery after subscribing until a cancel, a hand-back or a lost connection. Every
daemon probes every shard (through the default exchange) and every target (through the
consistent-hash exchange, with the target's name as routing key) each ``probe_interval``, so
a quiet shard is learned as fast as a busy one, and a quiet Janus's shard too.

Balance: the live members (heartbeats on a fanout exchange), sorted, get shard ``i`` as
``members[i % N]``: each prefers K/N ± 1 shards. An owner hands back (cancels, then
subscribes again, at the back of the line) a shard preferred by another member once the
member set has been stable for ``settle`` seconds; the broker gives it to the next consumer
in line, which hands it on if it is not the preferred one either.

Pure: the AMQP receiver feeds it and carries out what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEMBER_TIMEOUT_PROBES = 4
"""A member whose heartbeat is this many probe intervals late is taken for gone."""

SETTLE_PROBES = 3
"""The member set must be stable this many probe intervals before any hand-back."""

ACTIVE_TIMEOUT_PROBES = 4
"""An active shard gets a probe from every daemon each interval: this many intervals without
a delivery means the broker gave it to someone else without a word (a channel reopened)."""

EVENTS_OUTRANK_PROBES = 60.0
"""Seconds an emitter's events decide its shard over what probes for its name say."""


@dataclass(slots=True)
class Shard:
    index: int
    subscribed: bool = False
    active: bool = False
    active_since: float = 0.0
    handing_back: bool = False
    last_message: float = 0.0


@dataclass(slots=True)
class Member:
    last_seen: float
    ready: bool


@dataclass(slots=True)
class FleetCounters:
    messages: dict[str, int] = field(default_factory=lambda: {"applied": 0, "rejected": 0})
    probes: int = 0
    requeued: int = 0
    hand_backs: int = 0
    takeovers: int = 0
    connection_losses: int = 0
    disconnected_seconds: float = 0.0


class Ownership:
    """One daemon's view of the fleet."""

    def __init__(self, member: str, shards: int, probe_interval: float, now: float) -> None:
        self.member = member
        self.shards = [Shard(i) for i in range(shards)]
        self.probe_interval = probe_interval
        self.connected = False
        self.disconnected_at: float | None = now
        self.ever_connected = False
        self.emitter_shard: dict[str, int] = {}
        self.emitter_seen: dict[str, float] = {}
        self.events_seen: dict[str, float] = {}  # last event (not probe) of each emitter
        self.members: dict[str, Member] = {}
        self.members_changed_at = now
        self._live: tuple[str, ...] = ()
        self.counters = FleetCounters()
        self.backlog: dict[int, int] = {}

    # --- connection -------------------------------------------------------------------------

    def connected_now(self, now: float) -> None:
        if not self.connected and self.disconnected_at is not None and self.ever_connected:
            self.counters.disconnected_seconds += max(0.0, now - self.disconnected_at)
        self.connected, self.ever_connected, self.disconnected_at = True, True, None

    def disconnected_now(self, now: float) -> None:
        """Every delivery stops with the connection: nothing is owned until it is back."""
        if self.connected:
            self.counters.connection_losses += 1
            self.disconnected_at = now
        self.connected = False
        for shard in self.shards:
            shard.subscribed = shard.active = shard.handing_back = False
        self.backlog.clear()

    def disconnected_for(self, now: float) -> float:
        """Seconds disconnected so far, the current gap included."""
        current = (
            now - self.disconnected_at
            if self.disconnected_at is not None and self.ever_connected
            else 0.0
        )
        return self.counters.disconnected_seconds + max(0.0, current)

    # --- shards -----------------------------------------------------------------------------

    def subscribed(self, index: int) -> None:
        shard = self.shards[index]
        shard.subscribed, shard.active, shard.handing_back = True, False, False

    def cancelled(self, index: int) -> None:
        shard = self.shards[index]
        shard.subscribed = shard.active = False

    def delivered(
        self, index: int, emitters: set[str] | frozenset[str], now: float, probe: bool = False
    ) -> bool:
        """A message arrived on shard ``index`` (carrying these emitters). Returns False when
        it must go back to the queue: the shard is being handed back.

        A delivery proves the consumer exists (after a reconnect the robust connection
        restores consumers before it says so). A probe maps its target to the shard only
        when that emitter's own events have not said otherwise lately: with a route_key that
        is not the server_name, events and probes land on different shards, and the events
        are the ones that count.
        """
        shard = self.shards[index]
        if shard.handing_back:
            self.counters.requeued += 1
            return False
        shard.subscribed = True
        if not shard.active:
            shard.active, shard.active_since = True, now
            self.counters.takeovers += 1
        shard.last_message = now
        for emitter in emitters:
            if probe and now - self.events_seen.get(emitter, -EVENTS_OUTRANK_PROBES) < (
                EVENTS_OUTRANK_PROBES
            ):
                continue
            self.emitter_shard[emitter] = index
            self.emitter_seen[emitter] = now
            if not probe:
                self.events_seen[emitter] = now
        return True

    def expire(self, now: float) -> bool:
        """Stop owning shards that have been silent too long; True if any was."""
        silent = now - self.probe_interval * ACTIVE_TIMEOUT_PROBES
        expired = False
        for shard in self.shards:
            if shard.active and shard.last_message < silent:
                shard.active, expired = False, True
        return expired

    def hand_back(self, index: int) -> None:
        """Stop owning now, before the cancel reaches the broker: never two owners."""
        shard = self.shards[index]
        shard.handing_back, shard.active = True, False
        self.counters.hand_backs += 1

    @property
    def ready(self) -> bool:
        return self.connected and all(s.subscribed for s in self.shards)

    def owned_shards(self) -> list[int]:
        return [s.index for s in self.shards if s.active]

    def owned_emitters(self) -> frozenset[str]:
        active = {s.index for s in self.shards if s.active}
        return frozenset(e for e, i in self.emitter_shard.items() if i in active)

    def forget_emitters(self, keep: set[str], horizon: float) -> None:
        """Drop the shard of emitters neither configured nor heard from since ``horizon``."""
        for emitter in [e for e, t in self.emitter_seen.items() if t < horizon]:
            if emitter not in keep:
                del self.emitter_seen[emitter]
                self.emitter_shard.pop(emitter, None)
                self.events_seen.pop(emitter, None)

    # --- members and balance ----------------------------------------------------------------

    def heard(self, member: str, ready: bool, now: float) -> None:
        self.members[member] = Member(now, ready)
        self._refresh_live(now)

    def live_members(self, now: float) -> tuple[str, ...]:
        self._refresh_live(now)
        return self._live

    def _refresh_live(self, now: float) -> None:
        timeout = self.probe_interval * MEMBER_TIMEOUT_PROBES
        for name in [m for m, v in self.members.items() if now - v.last_seen > timeout]:
            del self.members[name]
        live = {m for m, v in self.members.items() if v.ready}
        if self.ready:
            live.add(self.member)
        ordered = tuple(sorted(live))
        if ordered != self._live:
            self._live, self.members_changed_at = ordered, now

    def preferred(self, index: int, now: float) -> str | None:
        live = self.live_members(now)
        return live[index % len(live)] if live else None

    def to_hand_back(self, now: float) -> list[int]:
        """Owned shards another ready member should own, once the member set has settled.

        The member must have been heard from a probe interval after this daemon took the
        shard: a shard that came here because its owner died is not handed back to the dead
        member while its heartbeat times out.
        """
        settle = self.probe_interval * SETTLE_PROBES
        live = self.live_members(now)
        if not self.ready or len(live) < 2 or now - self.members_changed_at < settle:
            return []
        handed: list[int] = []
        for shard in self.shards:
            preferred = live[shard.index % len(live)]
            if not shard.active or preferred == self.member or now - shard.active_since < settle:
                continue
            member = self.members.get(preferred)
            if member is not None and member.last_seen - shard.active_since >= self.probe_interval:
                handed.append(shard.index)
        return handed
