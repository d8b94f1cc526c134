"""The one state model: servers -> sessions -> handles, rooms, publishers, subscribers.

Every change goes through ``State.apply(event, now)``. Events are the main source; Admin API
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
from monitor.state.store import State

__all__ = [
    "PUBLISHER",
    "SUBSCRIBER",
    "Handle",
    "HandleKey",
    "Limits",
    "Publisher",
    "PublisherKey",
    "Room",
    "Server",
    "Session",
    "State",
    "Subscriber",
]
