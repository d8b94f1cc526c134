"""The remediation policy: state + signals + config + now -> decisions. No I/O, no clock of
its own: tested with a fake clock.

A publisher whose ingress bitrate stays above its room's cap x ``tolerance`` for
``sustain`` gets the first step of ``steps``; still over ``step_interval`` after an action,
the next one. Dropping under the threshold resets the ladder (so a publisher that complies
after ``cap_bitrate`` is never kicked), and no publisher gets two actions within
``step_interval``. Nothing is decided on stale data: the measurement must be newer than twice
the stats period Janus reports at (or the poll interval, when longer), and the publisher must
be in the room and publishing. Uncapped rooms have nothing to enforce unless
``default_cap`` gives them a cap. Exempt rooms and displays are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from monitor.config import Config
from monitor.signals.bitrate import BitrateSignal, MediaIn
from monitor.state import PUBLISHER, State
from monitor.state.model import Publisher, Server

DEFAULT_STATS_PERIOD = 5.0  # seconds, until the stats arriving say otherwise
MIN_GAP = 0.2
PublisherRef = tuple[str, str, str]  # (server, room, publisher)
PACE = 32  # publishers evaluated between the points where the executor may yield the loop


@dataclass(frozen=True, slots=True)
class Decision:
    """One step decided for one publisher; the executor carries it out (or not, by mode)."""

    server: str
    room: str
    publisher: str
    display: str | None
    session_id: int
    handle_id: int
    step: str
    measured_bps: float
    cap: int
    tolerance: float
    decided_at: float  # the daemon's monotonic clock


@dataclass(slots=True)
class Ladder:
    """Where one publisher stands: over since when, which step is next, the last action."""

    over_since: float | None = None
    next_step: int = 0
    last_action: float | None = None
    handle: tuple[int, int] | None = None


@dataclass(slots=True)
class Ladders:
    """The policy's memory between evaluations, per publisher."""

    by_publisher: dict[PublisherRef, Ladder] = field(default_factory=dict)

    def forget_gone(self, state: State) -> Iterator[None]:
        """Drops the ladders of publishers that left, with a None every PACE ladders (10 k
        publishers over a cap are 10 k ladders: 3 ms in one go)."""
        for n, ref in enumerate(list(self.by_publisher), 1):
            if not n % PACE:
                yield None
            server = state.servers.get(ref[0])
            if server is None or (ref[1], ref[2]) not in server.publishers:
                self.by_publisher.pop(ref, None)


@lru_cache(maxsize=16)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def stats_period(media: MediaIn) -> float:
    """How often Janus reports this publisher's stats, from the last few reports (worked out
    once per report: the policy asks every second for every publisher)."""
    if media.period is not None and media.period[0] == media.reports:
        return media.period[1]
    times = [at for at, _ in media.history]
    # Audio and video come as separate events a few ms apart: only the gaps between reports.
    gaps = sorted(b - a for a, b in pairwise(times) if b - a > MIN_GAP)
    period = gaps[len(gaps) // 2] if gaps else DEFAULT_STATS_PERIOD
    media.period = (media.reports, period)
    return period


def effective_cap(server: Server, publisher: Publisher, config: Config) -> int | None:
    """The cap to enforce: the room's, else over_bitrate.default_cap; None: nothing to do."""
    room = server.rooms.get(publisher.room)
    cap = room.bitrate_cap if room is not None else None
    if cap:
        return cap
    default = config.remediation.over_bitrate.default_cap
    return default or None


def decide(
    state: State, bitrate: BitrateSignal, config: Config, ladders: Ladders, now: float
) -> list[Decision]:
    """Every decision of this evaluation, at once."""
    return [d for d in decide_paced(state, bitrate, config, ladders, now) if d is not None]


def decide_paced(
    state: State, bitrate: BitrateSignal, config: Config, ladders: Ladders, now: float
) -> Iterator[Decision | None]:
    """The decisions, with a None every PACE publishers: where the executor may let ingest
    run (10 k publishers are tens of ms). Publishers are walked from a snapshot, and one gone
    meanwhile is skipped."""
    rules = config.remediation.over_bitrate
    if config.remediation.mode == "off":
        return
    yield from ladders.forget_gone(state)
    exempt_rooms = set(rules.exempt_rooms)
    exempt_display = _pattern(rules.exempt_display_regex) if rules.exempt_display_regex else None
    for target in config.targets:
        server = state.servers.get(target.name)
        if server is None:
            continue
        # A snapshot of the keys: of items, it was 10 k tuples made in one go.
        for n, (room_id, publisher_id) in enumerate(list(server.publishers), 1):
            if not n % PACE:
                yield None
            publisher = server.publishers.get((room_id, publisher_id))
            if publisher is None:
                continue  # gone while the walk let ingest run
            ref = (server.name, room_id, publisher_id)
            ladder = ladders.by_publisher.get(ref)
            handle = server.handle(publisher.handle) if publisher.handle else None
            media = bitrate.of(server, publisher.handle)
            cap = effective_cap(server, publisher, config)
            if (
                handle is None
                or handle.role != PUBLISHER
                or not publisher.publishing
                or media is None
                or cap is None
                or room_id in exempt_rooms
                or (exempt_display is not None and exempt_display.search(publisher.display or ""))
            ):
                continue
            measured = media.total_bitrate()
            age = now - media.updated
            # stats_period sorts the history: only worked out when the age needs it.
            if measured is None or (age > target.poll_interval and age > 2 * stats_period(media)):
                continue  # stale: wait for a measurement (e.g. after a restart)
            if ladder is not None and ladder.handle != publisher.handle:
                ladder = None  # rejoined from another handle: a new ladder
            if measured <= cap * rules.tolerance:
                # Complied: the ladder resets. Only one that acted is kept (its last action
                # still spaces the next); the rest are not held for 10 k compliant publishers.
                if ladder is not None and ladder.last_action is not None:
                    ladder.over_since, ladder.next_step = None, 0
                else:
                    ladders.by_publisher.pop(ref, None)
                continue
            if ladder is None:
                ladder = ladders.by_publisher[ref] = Ladder(handle=publisher.handle)
            if ladder.over_since is None:
                ladder.over_since = now
            if now - ladder.over_since < rules.sustain or ladder.next_step >= len(rules.steps):
                continue
            if ladder.last_action is not None and now - ladder.last_action < rules.step_interval:
                continue
            step = rules.steps[ladder.next_step]
            ladder.next_step += 1
            ladder.last_action = now
            yield (
                Decision(
                    server=server.name, room=room_id, publisher=publisher_id,
                    display=publisher.display, session_id=handle.session_id,
                    handle_id=handle.handle_id, step=step, measured_bps=measured, cap=cap,
                    tolerance=rules.tolerance, decided_at=now,
                )
            )  # fmt: skip
