"""A publisher id taken over by a new handle: the publisher moves, and the old handle is out
of the room."""

from __future__ import annotations

from monitor.state import State
from tests.test_state import SERVER, ev, replay


def test_joined_with_an_id_taken_over_by_a_new_handle_moves_the_publisher() -> None:
    """When a publisher id rejoins from a new handle, the (room, id) map points to the new one."""
    state = State(targets=(SERVER,))
    joined = {
        "plugin": "janus.plugin.videoroom",
        "data": {"event": "joined", "room": 5, "id": 42, "display": "a"},
    }
    state.apply(ev(joined, 64, 1, 1), 1.0)
    state.apply(ev(joined, 64, 2, 2), 2.0)
    server = state.servers[SERVER]
    assert server.publishers[("5", "42")].handle == (2, 2)
    gone = {"plugin": "janus.plugin.videoroom", "data": {"event": "leaving", "room": 5, "id": 42}}
    state.apply(ev(gone, 64), 3.0)
    assert server.publishers == {}


def test_a_reused_publisher_id_takes_the_old_handle_out_of_the_room() -> None:
    """A new handle joining with a publisher id still held: the old handle is out of the
    room (its room cleared), so the room's destroy needs only its members' handles."""
    state = replay("10-media", upto="00030")
    server = state.servers[SERVER]
    publisher = next(iter(server.publishers.values()))
    assert publisher.handle is not None
    room, old_key = publisher.room, publisher.handle
    joined = {"name": "joined", "room": int(room), "id": int(publisher.publisher_id),
              "private_id": 1, "display": "again"}  # fmt: skip
    state.apply(
        ev({"name": "attached", "plugin": "janus.plugin.videoroom"}, 2, old_key[0], 99), 1001.0
    )
    state.apply(ev({"plugin": "janus.plugin.videoroom", "data": {"event": "joined", **joined}}, 64,
                   old_key[0], 99), 1001.0)  # fmt: skip
    assert server.publishers[(room, publisher.publisher_id)].handle == (old_key[0], 99)
    old = server.handle(old_key)
    assert old is not None and old.room is None
