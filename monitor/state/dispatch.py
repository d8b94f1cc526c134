"""The dispatch table: for each decoded body type, the handlers that see it, in order.

Like gidgethub's Router, several handlers register for one body type. Each names its stage,
so the order is explicit rather than an accident of registration:

- ``BEFORE``: signals that need the value from before the change (a bytes counter across a
  PeerConnection restart, a handle's role before a join changes it);
- ``MEMBERSHIP``: the state model's own applier (sessions, handles, rooms, participants);
- ``AFTER``: signals that read the state as the event left it.

Within a stage, handlers run in registration order. A body type no membership applier
handles gets ``Ops.touch`` there (an event still confirms the session and handle it names).
The table is built once, by the wiring, and handed to ``State``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from monitor.decode.records import Body, Event
    from monitor.state.model import Server
    from monitor.state.ops import Ops

B = TypeVar("B", bound="Body")

Handler = Callable[["Ops", "Server", "Event", Any, float], None]
"""(ops, server, event, event.body, now): ``now`` is the daemon's monotonic clock."""


class Stage(IntEnum):
    BEFORE = 0
    MEMBERSHIP = 1
    AFTER = 2


def touch(ops: Ops, server: Server, event: Event, body: Any, now: float) -> None:
    """The default membership step: confirm the session and handle the event names."""
    ops.touch(server, event, now)


class Router:
    """Collects handlers by body type and stage; ``table()`` freezes them into the order."""

    def __init__(self) -> None:
        self._entries: list[tuple[type[Any], Stage, int, Handler]] = []

    def register(
        self,
        body_type: type[B],
        stage: Stage,
        handler: Callable[[Ops, Server, Event, B, float], None],
    ) -> None:
        if stage is Stage.MEMBERSHIP and any(
            t is body_type and s is Stage.MEMBERSHIP for t, s, _, _ in self._entries
        ):
            raise ValueError(f"{body_type.__name__} already has a membership applier")
        self._entries.append((body_type, stage, len(self._entries), handler))

    def table(self) -> Mapping[type[Any], tuple[Handler, ...]]:
        staged: dict[type[Any], list[tuple[Stage, int, Handler]]] = {}
        for body_type, stage, order, handler in self._entries:
            staged.setdefault(body_type, []).append((stage, order, handler))
        table: dict[type[Any], tuple[Handler, ...]] = {}
        for body_type, entries in staged.items():
            if all(stage is not Stage.MEMBERSHIP for stage, _, _ in entries):
                entries.append((Stage.MEMBERSHIP, -1, touch))
            entries.sort(key=lambda entry: (entry[0], entry[1]))
            table[body_type] = tuple(handler for _, _, handler in entries)
        return table
