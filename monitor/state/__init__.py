"""The one state model: servers -> sessions -> handles, rooms, publishers, subscribers.

Every change goes through ``State.apply(event, now)``, which hands the event to its handlers in
the dispatch table's order (``dispatch``); they change records only through ``Ops``, which
also calls the removal hooks signals subscribe to (``hooks``). Events are the main source; Admin API
polls are turned into records applied through the same door. ``now`` is the daemon's
monotonic clock: it stamps what each record confirms, and ``sweep`` drops what nothing has
confirmed for ``stale_after`` seconds.

Janus 1.1.2 facts this relies on (janus-protocol.md §1.2, §2, fixture README):
- handle ids are unique only within their session, so handles are keyed (session, handle);
- `unpublished`, `leaving` and `kicked` carry no session or handle: resolve them through the
  (room, publisher id) -> handle map built from `joined`;
- events for a session or handle keep arriving after it is destroyed (queued media stats), so
  recently removed sessions and handles are remembered and not re-created by stragglers;
- a subscriber `updated` can arrive with the context of the publisher whose change caused it.
"""

from monitor.state.dispatch import Handler, Router, Stage
from monitor.state.hooks import RemovalHooks
from monitor.state.model import (
    PUBLISHER,
    SUBSCRIBER,
    Handle,
    HandleKey,
    Limits,
    Publisher,
    PublisherKey,
    Room,
    Server,
    Session,
    Subscriber,
)
from monitor.state.ops import Ops
from monitor.state.store import State, membership_table

__all__ = [
    "PUBLISHER",
    "SUBSCRIBER",
    "Handle",
    "HandleKey",
    "Handler",
    "Limits",
    "Ops",
    "Publisher",
    "PublisherKey",
    "RemovalHooks",
    "Room",
    "Router",
    "Server",
    "Session",
    "Stage",
    "State",
    "Subscriber",
    "membership_table",
]
