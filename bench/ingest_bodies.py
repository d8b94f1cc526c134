"""What ``bench.ingest`` sends: its constants and the real 100-event sampleevh bodies.

Bodies (rotated, each exactly 100 events from emitter ``janus-lab-1``):

- 56-evh-compress-burst/00029 and 00048: the bytes Janus sent, gunzipped from ``NNNNN.json.gz``
  (compact JSON; the ``NNNNN.json`` beside them is a re-indented copy with the same content).
- a mix: the first 70 events of 10-media (through its first media-stats burst: core, session,
  handle, transport, videoroom, webrtc and jsep events) then the first 30 of 40-reuse, serialized
  as Janus 1.1.2 does by default (``json = indented``: 3-space indent; this reproduces the
  fixture files byte for byte).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "tests" / "fixtures" / "janus-1.1.2" / "events"
EMITTER = "janus-lab-1"
EVENTS_PER_BODY = 100
WEBHOOK_PATH = "/events"
START_TIMEOUT = 20.0
HEADERS = {"Content-Type": "application/json", "Accept": "*/*"}  # what sampleevh sends


class BenchError(Exception):
    """The benchmark cannot give a meaningful number (a server died, a batch was refused...)."""


@dataclass(frozen=True)
class Body:
    name: str
    data: bytes


def _numbered(scenario: str) -> list[Path]:
    files = sorted((EVENTS_DIR / scenario).glob("[0-9]*.json"))
    if not files:
        raise BenchError(f"no fixture files in {EVENTS_DIR / scenario}")
    return files


def _scenario_events(scenario: str) -> list[Any]:
    events: list[Any] = []
    for path in _numbered(scenario):
        parsed = json.loads(path.read_bytes())
        events.extend(parsed if isinstance(parsed, list) else [parsed])
    return events


def _check_body(body: Body) -> None:
    parsed = orjson.loads(body.data)
    if not isinstance(parsed, list) or len(parsed) != EVENTS_PER_BODY:
        raise BenchError(f"{body.name}: expected a JSON array of {EVENTS_PER_BODY} events")
    emitters = {item.get("emitter") for item in parsed}
    if emitters != {EMITTER}:
        raise BenchError(f"{body.name}: emitters {emitters}, expected only {EMITTER}")


def load_bodies() -> list[Body]:
    bodies: list[Body] = []
    for number in ("00029", "00048"):
        sent = EVENTS_DIR / "56-evh-compress-burst" / f"{number}.json.gz"
        data = gzip.decompress(sent.read_bytes())
        copy = sent.with_suffix("")  # NNNNN.json, the decoded (re-indented) copy
        if copy.exists() and json.loads(copy.read_bytes()) != json.loads(data):
            raise BenchError(f"{sent} and {copy} do not hold the same events")
        bodies.append(Body(f"56-burst/{number} (compact)", data))
    media = _scenario_events("10-media")[:70]
    reuse = _scenario_events("40-reuse")[: EVENTS_PER_BODY - len(media)]
    mix = json.dumps(media + reuse, indent=3, ensure_ascii=False).encode()
    bodies.append(Body("10-media[:70]+40-reuse[:30] (indented)", mix))
    for body in bodies:
        _check_body(body)
    return bodies


# The bench rotates a few bodies, which a 60 s duplicate window would answer from memory: a
# 10 ms window still hashes, looks up, remembers and expires every body, as in production,
# while the rotation (VARIANTS copies of each body) never repeats one within it.
DUPLICATE_WINDOW = "10ms"
VARIANTS = 32
_FIRST_TIMESTAMP = re.compile(rb'"timestamp":(\s*)(\d+)')


def variants(data: bytes, count: int = VARIANTS) -> list[bytes]:
    """``count`` copies of a body that differ in the first event's timestamp (same length)."""
    found = _FIRST_TIMESTAMP.search(data)
    if found is None:
        raise BenchError("a body without a timestamp cannot be varied")
    head, tail = data[: found.start(2)], data[found.end(2) :]
    out = [head + str(int(found[2]) + n).encode() + tail for n in range(count)]
    if len(set(out)) != count:
        raise BenchError("a body without a timestamp cannot be varied")
    return out
