"""What the fuzzers send: random JSON, batches of real and hostile events, byte soup,
compressions and their corruptions. The hostile events are the decoder property test's."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import orjson
from hypothesis import strategies as st

from tests.test_events_property import TEMPLATES, hostile_events

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # past 64 bits too: the stdlib writes them, orjson reads them as floats
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON as the stdlib writes it: lone surrogates become \\ud800 escapes (ascii_only) or
    the bytes ed a0 80, which are not UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """Any JSON document at all: scalars, arrays of anything, objects of anything."""
    return dumps(draw(json_values), draw(st.booleans()))


# An item of a batch: a real event, a real event with hostile fields, or any JSON value.
batch_items = st.one_of(st.sampled_from(TEMPLATES), hostile_events(), json_values)


@st.composite
def event_batches(draw: st.DrawFn) -> bytes:
    """A sampleevh body: one event object, or an array mixing valid, hostile and random items."""
    items = draw(st.lists(batch_items, max_size=12))
    if len(items) == 1 and isinstance(items[0], dict) and draw(st.booleans()):
        return dumps(items[0], True)  # one event, not grouped
    return dumps(items, draw(st.booleans()))


NOT_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"]


@st.composite
def byte_soup(draw: st.DrawFn) -> bytes:
    """Random bytes, or a real body cut short, with bytes flipped, or with bytes that are not
    UTF-8 spliced in (inside a string or anywhere)."""
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "not-utf8"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    body = draw(event_batches())
    if kind == "truncated":
        return body[: draw(st.integers(0, max(0, len(body) - 1)))]
    at = draw(st.integers(0, len(body)))
    if kind == "flipped":
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    quote = body.find(b'"', at)  # inside the next string, where a decoder would look
    at = quote + 1 if quote >= 0 and draw(st.booleans()) else at
    return body[:at] + draw(st.sampled_from(NOT_UTF8)) + body[at:]


any_body = st.one_of(json_bodies(), event_batches(), byte_soup())


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# How a payload is put on the wire: name -> (the transformation, does it keep the payload).
CODINGS = {
    "gzip": (lambda d: gzip.compress(d, 1), True),
    "gzip-2-members": (
        lambda d: gzip.compress(d[: len(d) // 2]) + gzip.compress(d[len(d) // 2 :]),
        True,
    ),
    "zlib": (lambda d: zlib.compress(d, 1), True),
    "raw-deflate": (raw_deflate, True),
    "plain": (lambda d: d, True),
    "gzip-twice": (lambda d: gzip.compress(gzip.compress(d)), False),
    "gzip-trailing-garbage": (lambda d: gzip.compress(d) + b"\x00garbage", False),
}
ENCODING_HEADERS = {
    "gzip": ["gzip", "x-gzip", " GZIP ", "Gzip"],
    "deflate": ["deflate", "DEFLATE"],
    "identity": ["identity", ""],
    "unsupported": ["br", "compress", "zstd", "gzip, deflate", "gzip;q=1", "x-deflate", "*"],
}


@st.composite
def encoded_bodies(draw: st.DrawFn) -> tuple[bytes, bytes, str | None, bool]:
    """(payload, wire bytes, Content-Encoding, whether the daemon should read the payload
    back): a coding matching its header or not, cut short or not, or an encoding name that
    is not supported or random."""
    payload = draw(st.one_of(event_batches(), json_bodies()))
    coding = draw(st.sampled_from(sorted(CODINGS)))
    transform, keeps = CODINGS[coding]
    wire = transform(payload)
    family = draw(st.sampled_from([*ENCODING_HEADERS, "none", "random"]))
    if family == "none":
        header = None
    elif family == "random":
        header = draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12))
    else:
        header = draw(st.sampled_from(ENCODING_HEADERS[family]))
    name = (header or "").strip().lower()
    readable = keeps and (
        (coding == "plain" and name in ("", "identity"))
        or (coding.startswith("gzip") and name in ("gzip", "x-gzip"))
        or (coding in ("zlib", "raw-deflate") and name == "deflate")
    )
    if coding != "plain" and draw(st.integers(0, 3)) == 0:
        wire, readable = wire[: draw(st.integers(0, len(wire) - 1))], False  # cut short
    return payload, wire, header, readable


def header_values(max_size: int) -> st.SearchStrategy[bytes]:
    """Header values of any bytes an HTTP parser lets through (no controls but tab), UTF-8
    or not: what reaches the daemon's handlers rather than aiohttp's 400."""
    return st.binary(max_size=max_size).filter(
        lambda b: all(c == 0x09 or (c >= 0x20 and c != 0x7F) for c in b)
    )


def template_bytes() -> list[bytes]:
    return [orjson.dumps(t) for t in TEMPLATES]
