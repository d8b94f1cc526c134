"""Field readers shared by the event and Admin-reply decoders: every value they return is
bounded, so nothing a sender writes can grow a label, a log line or an API answer without
limit, or hold an integer that JSON writers refuse.

A value of the wrong type, or out of range, reads as absent (None); callers that need the
field reject the event with their own message.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
"""Janus's integers are C int64/uint64; orjson writes exactly this range and refuses beyond."""

MAX_ID_CHARS = 128
"""Room, participant and stream ids, and emitter names: labels and dict keys."""

MAX_TEXT_CHARS = 256
"""Free text kept in state (display, description, opaque_id, codec, versions): truncated."""

MAX_ITEMS_PER_FIELD = 256
"""Entries of one list kept per object (subscriber streams, media layers, plugins)."""

MAX_PUBLISHER_STREAMS = 16
"""Streams of one publisher (a browser sends audio, video and maybe data or a screen)."""

MEDIA_KINDS = frozenset(("audio", "video", "data"))
MAX_TOKEN_CHARS = 32


MAX_REQUIRED_CHARS = 1024
"""A state name, reason or candidate line that an event needs: real ones are under 300."""

# The same bounds for msgspec's typed decoding (decode.batch, decode.media, decode.raw): a
# value outside them fails there, and is read by the Python readers below instead.
TypedInt = Annotated[int, msgspec.Meta(ge=INT_MIN, le=2**63 - 1)]
"""An integer within int64 (msgspec bounds only within it; past it, and for a float, the
value is read by read_int / the per-item path)."""
TypedId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
TypedRequired = Annotated[str, msgspec.Meta(max_length=MAX_REQUIRED_CHARS)]
JSON_OBJECT, JSON_ARRAY = ord("{"), ord("[")
"""The first byte of a msgspec.Raw object or array."""


class DecodeError(ValueError):
    """The event is unusable; the message says why (it is sent back to the client)."""


@dataclass(slots=True)
class DecodeNotes:
    """What a batch contained that this decoder does not know; counted, never fatal."""

    unknown: dict[str, int] = field(default_factory=dict)

    def note(self, what: str) -> None:
        self.unknown[what] = self.unknown.get(what, 0) + 1


def read_int(value: Any) -> int | None:
    """An integer within int64/uint64; a float is accepted (truncated) when in that range."""
    if type(value) is int:
        return value if INT_MIN <= value <= INT_MAX else None
    if type(value) is float and INT_MIN <= value <= INT_MAX:  # NaN compares False
        return int(value)
    return None


def read_text(value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    """A string, cut to ``limit`` characters."""
    if type(value) is not str:
        return None
    return value if len(value) <= limit else value[:limit]


NAME_CHARS = 64  # at most this long, a name worth sharing


def read_name(value: Any) -> str | None:
    """A name every handle or session repeats (a plugin, a transport): one shared string
    (``sys.intern``: mortal, so freed with its last user) instead of one per decode."""
    text = read_text(value)
    return sys.intern(text) if text is not None and len(text) <= NAME_CHARS else text


_KIND_NAMES = {kind: kind for kind in MEDIA_KINDS}


def read_kind(value: Any) -> str | None:
    """A media kind: audio, video or data, as this module's string (one for every report,
    not the decoded copy); anything else is absent."""
    return _KIND_NAMES.get(value) if type(value) is str else None


def read_token(value: Any) -> str | None:
    """A short name such as a codec (vp8, opus, h264): letters, digits, ``.-_``, at most 32."""
    if type(value) is not str or not 0 < len(value) <= MAX_TOKEN_CHARS:
        return None
    return value if all(c.isalnum() or c in "._-" for c in value) and value.isascii() else None


def read_bool(value: Any) -> bool | None:
    return value if type(value) is bool else None


def read_id(value: Any) -> str | None:
    """A VideoRoom room/participant id: an integer, or a string with string_ids (1 to 128
    characters). Kept as a string, so both modes share one code path and one label format."""
    if type(value) is int:
        return str(value) if INT_MIN <= value <= INT_MAX else None
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS:
        return value
    return None


def object_of(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the value is anything else."""
    return value if type(value) is dict else {}


def required_object(body: Any, what: str) -> dict[str, Any]:
    if type(body) is not dict:
        raise DecodeError(f"{what} event body is not a JSON object")
    return body


def required_text(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise DecodeError(f"{what} event has no '{key}' string")
    if len(value) > MAX_REQUIRED_CHARS:
        raise DecodeError(f"{what} event '{key}' is longer than {MAX_REQUIRED_CHARS} characters")
    return value
