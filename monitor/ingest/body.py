"""Turn a received body into a list of raw event items: decompress with limits, then parse."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

MAX_ITEMS = 10_000
"""Events per body: Janus groups at most 100; far more would hold the event loop for seconds."""

VALUES_PER_ITEM = 64
"""JSON values an event may hold on average: the Janus 1.1.2 fixtures average 11.7 per event,
86 at most (a core `started` with its plugin list). A parsed value costs up to 72 bytes of
memory for 3 bytes of JSON (``{},``), so a body is refused before parsing when it could hold
more values than MAX_ITEMS events of this size: parsing stays under about 50 MB."""

MAX_VALUES = MAX_ITEMS * VALUES_PER_ITEM


def count_values(data: bytes | str) -> int:
    """An upper bound on the JSON values in ``data``: every value but the first follows a comma
    or opens a container (commas inside strings make it an over-estimate). C-speed counts, no
    parse: about 2 ms per MiB."""
    if isinstance(data, str):
        return data.count(",") + data.count("{") + data.count("[")
    return data.count(b",") + data.count(b"{") + data.count(b"[")


def _too_many_values() -> BodyError:
    return BodyError(
        413,
        "too_large",
        f"body holds more than {MAX_VALUES} JSON values "
        f"(at most {MAX_ITEMS} events of {VALUES_PER_ITEM} values each)",
    )


class BodyError(Exception):
    """A body refused as a whole: HTTP status, the rejection reason label, and a message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


_INFLATE_STEP = 1 << 20  # bytes of output per zlib call


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes: a gzip bomb is stopped at the limit, not after it.

    Output is produced in steps of at most _INFLATE_STEP, so refusing a bomb holds about
    ``limit`` bytes, not the twice that one big bounded call would (its output buffer is
    assembled from blocks and then copied).
    """
    out: list[bytes] = []
    size = 0
    values = 0
    inflater = zlib.decompressobj(wbits)
    while True:
        chunk = inflater.decompress(data, min(_INFLATE_STEP, limit - size + 1))
        size += len(chunk)
        if size > limit:
            raise BodyError(
                413,
                "decompressed_too_large",
                f"body inflates to more than webhook.max_decompressed_bytes ({limit} bytes)",
            )
        values += count_values(chunk)
        if values > MAX_VALUES:
            raise _too_many_values()  # known at the first MiB or so, not at the size limit
        out.append(chunk)
        if inflater.eof:
            data = inflater.unused_data
            if not data:
                return b"".join(out)
            inflater = zlib.decompressobj(wbits)  # another gzip member follows
        elif chunk:
            # More may follow: input left over at the step size, or output still pending.
            data = inflater.unconsumed_tail
        else:
            raise BodyError(400, "bad_compression", "compressed body is truncated")


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        return raw
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(raw, 16 + zlib.MAX_WBITS, limit)
        if coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped; some senders use raw deflate: accept both.
            wrapped = len(raw) >= 2 and (raw[0] & 0x0F) == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
            return _inflate(raw, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS, limit)
    except zlib.error as exc:
        raise BodyError(400, "bad_compression", f"cannot decompress {coding} body: {exc}") from None
    raise BodyError(
        415,
        "unsupported_encoding",
        f"unsupported Content-Encoding {encoding!r}: send gzip, deflate or no encoding",
    )


def parse_items(data: bytes | str) -> list[Any]:
    """A JSON object is one event, an array is a batch of them (sampleevh grouping)."""
    if not data:
        raise BodyError(400, "malformed_json", "body is empty: expected a JSON object or array")
    if len(data) > MAX_VALUES and count_values(data) > MAX_VALUES:  # shorter ones cannot
        raise _too_many_values()
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if type(parsed) is list:
        if len(parsed) > MAX_ITEMS:
            raise BodyError(
                413, "too_large", f"body holds {len(parsed)} events; at most {MAX_ITEMS} per body"
            )
        return parsed
    if type(parsed) is dict:
        return [parsed]
    raise BodyError(400, "bad_body", "body must be a JSON object or an array of event objects")
