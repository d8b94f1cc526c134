"""Many participants from one real capture: copies of a fixture scenario with rewritten ids.

Each copy gets its own sessions, handles and publisher ids (and the room it is told), so the
daemon tracks them as distinct participants; everything else (media stats, ICE, JSEP) stays
as Janus 1.1.2 sent it. The benchmarks use it for the 10 k-publisher scrape and the 1 M-event
replay, where sessions, handles and publishers come and go.
"""

from __future__ import annotations

import copy as copying
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

EVENTS_DIR = Path(__file__).resolve().parents[1] / "tests/fixtures/janus-1.1.2/events"
EMITTER = "janus-lab-1"
ID_STRIDE = 1_000_003  # ids of copy n: n * stride + a small ordinal, unique across copies


def scenario(name: str) -> list[dict[str, Any]]:
    """The events of a fixture scenario, in the order Janus sent them."""
    items: list[dict[str, Any]] = []
    for path in sorted((EVENTS_DIR / name).glob("[0-9]*.json")):
        parsed = orjson.loads(path.read_bytes())
        items.extend(parsed if isinstance(parsed, list) else [parsed])
    return items


def until(items: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    """The events before the first VideoRoom ``event`` (e.g. ``kicked``): everyone still in."""
    for index, item in enumerate(items):
        data = (item.get("event") or {}).get("data")
        if isinstance(data, dict) and data.get("event") == event:
            return items[:index]
    return items


class Rewriter:
    """One copy's id map: the same original id always maps to the same new one."""

    def __init__(self, number: int, room: int) -> None:
        self.base = (number + 1) * ID_STRIDE
        self.room = room
        self.ids: dict[int, int] = {}

    def new_id(self, old: Any) -> Any:
        if not isinstance(old, int) or isinstance(old, bool) or old == 0:
            return old
        if old not in self.ids:
            self.ids[old] = self.base + len(self.ids) + 1
        return self.ids[old]

    def event(self, item: dict[str, Any]) -> dict[str, Any]:
        out = copying.deepcopy(item)
        out["emitter"] = EMITTER
        for key in ("session_id", "handle_id"):
            if key in out:
                out[key] = self.new_id(out[key])
        data = (out.get("event") or {}).get("data")
        if isinstance(data, dict):
            if "room" in data:
                data["room"] = self.room
            for key in ("id", "private_id"):
                if key in data:
                    data[key] = self.new_id(data[key])
            for stream in data.get("streams") or ():
                if isinstance(stream, dict) and "feed_id" in stream:
                    stream["feed_id"] = self.new_id(stream["feed_id"])
        return out


def copies(
    template: list[dict[str, Any]], count: int, per_room: int, first: int = 0
) -> Iterator[list[dict[str, Any]]]:
    """``count`` copies of ``template``, ``per_room`` copies sharing each room."""
    for number in range(first, first + count):
        rewriter = Rewriter(number, room=10_000 + number // per_room)
        yield [rewriter.event(item) for item in template]


def batches(items: list[dict[str, Any]], size: int = 100) -> Iterator[bytes]:
    """Compact sampleevh bodies of at most ``size`` events."""
    for start in range(0, len(items), size):
        yield orjson.dumps(items[start : start + size])


class Copier:
    """Copies of the capture as JSON bytes, ids rewritten by substitution (fast enough to
    generate 1 M events while sending them)."""

    def __init__(self) -> None:
        self.events = scenario("10-media")
        ids: set[int] = set()
        for item in self.events:
            ids.update(v for k in ("session_id", "handle_id") if isinstance(v := item.get(k), int))
            data = (item.get("event") or {}).get("data")
            if isinstance(data, dict):
                ids.update(v for k in ("id", "private_id") if isinstance(v := data.get(k), int))
                for stream in data.get("streams") or ():
                    if isinstance(stream, dict) and isinstance(stream.get("feed_id"), int):
                        ids.add(stream["feed_id"])
        self.ids = sorted(i for i in ids if i > 10**9)  # Janus's ids are 53-bit random
        self.rooms = {data["room"] for item in self.events
                      if isinstance(data := (item.get("event") or {}).get("data"), dict)
                      and isinstance(data.get("room"), int)}  # fmt: skip
        self.lines = [orjson.dumps({**item, "emitter": EMITTER}) for item in self.events]
        self.stamps = [item.get("timestamp") for item in self.events]
        # Copies of an event with no ids differ by their time alone. Copy n is shifted by n
        # times more than the capture lasts, so that no two copies' events, and no two bodies,
        # are alike (the daemon answers a body it saw within duplicate_window from memory).
        known = [stamp for stamp in self.stamps if isinstance(stamp, int)]
        self.shift = max(known) - min(known) + 1_000_000 if known else 0

    def copy(self, number: int) -> list[bytes]:
        base = (number + 1) * ID_STRIDE
        out = []
        for line, stamp in zip(self.lines, self.stamps, strict=True):
            if isinstance(stamp, int):
                moved = stamp + number * self.shift
                line = line.replace(b'"timestamp":%d' % stamp, b'"timestamp":%d' % moved)
            for ordinal, old in enumerate(self.ids):
                line = line.replace(str(old).encode(), str(base + ordinal).encode())
            for room in self.rooms:
                line = line.replace(f'"room":{room}'.encode(), f'"room":{base}'.encode())
            out.append(line)
        return out
