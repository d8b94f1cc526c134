"""Media stats entries: the typed path reads exactly what the per-entry reader reads, and
takes only entries that reader keeps without a note or a dropped value."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode.fields import DecodeNotes
from monitor.decode.media import (
    EVENT_KEYS,
    stat_from_event,
    stats_from_event,
    typed_stats,
    typed_stats_json,
)
from monitor.decode.records import MediaStat
from tests.conftest import EVENTS


def _fixture_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for path in sorted(EVENTS.glob("*/[0-9]*.json")):
        parsed = orjson.loads(path.read_bytes())
        for item in parsed if isinstance(parsed, list) else [parsed]:
            if item.get("type") == 32 and item.get("subtype") == 3:
                entries.append(item["event"])
            elif item.get("type") == 32 and isinstance(item.get("event"), list):
                entries.extend(item["event"])
    return entries


FIXTURE_ENTRIES = _fixture_entries()
KEYS = ("mid", "mindex", "media", "codec", "base", "rtt-values", *EVENT_KEYS)


def _per_entry(entries: list[Any]) -> tuple[tuple[MediaStat, ...], dict[str, int]]:
    notes = DecodeNotes()
    stats = tuple(s for s in (stat_from_event(e, notes) for e in entries) if s is not None)
    return stats, notes.unknown


def test_every_real_stats_entry_takes_the_typed_path_with_the_same_record() -> None:
    """Each of the fixtures' stats entries (Janus 1.1.2, audio, video and simulcast layers)
    is typed, into the record the per-entry reader makes, sharing its stream key."""
    assert len(FIXTURE_ENTRIES) > 100
    for entry in FIXTURE_ENTRIES:
        typed = typed_stats([entry])
        assert typed is not None, entry
        slow, notes = _per_entry([entry])
        assert typed == slow and not notes
        assert typed[0].stream is slow[0].stream


_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(
        [
            "",
            "vp8\n",
            "h264",
            "video-sim2",
            "video-sim",
            "audio",
            "x" * 129,
            "y" * 257,
            "é",
            "opus.1-a_b",
            "0",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def _entries(draw: st.DrawFn) -> list[Any]:
    """Real entries with odd values at some keys, keys taken away or added, or an entry that
    is not an object at all."""
    out: list[Any] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            out.append(draw(_ODD_VALUES))
            continue
        entry = dict(draw(st.sampled_from(FIXTURE_ENTRIES)))
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=4)):
            if draw(st.booleans()):
                entry[key] = draw(_ODD_VALUES)
            else:
                entry.pop(key, None)
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            entry[draw(st.sampled_from(["rtt_values", "extra", "Lost", "bytes_sent"]))] = 1
        out.append(entry)
    return out


@settings(max_examples=600, deadline=None)
@given(_entries())
def test_any_entries_read_as_the_per_entry_reader_reads_them(entries: list[Any]) -> None:
    """Whatever the entries hold, a stats event's records and notes are the per-entry
    reader's, and the typed path answers only when it needed no note."""
    notes = DecodeNotes()
    stats = stats_from_event(entries, notes)
    slow, slow_notes = _per_entry(entries)
    assert stats == slow
    assert [s.stream for s in stats] == [s.stream for s in slow]
    assert notes.unknown == slow_notes
    if typed_stats(entries) is not None:
        assert not slow_notes
    data = json.dumps(entries).encode()
    try:
        parsed = msgspec.json.decode(data)
    except msgspec.DecodeError:  # NaN or Infinity: not JSON, so never reaches a decoder
        return
    from_json = typed_stats_json(data, True)
    assert (from_json is None) == (typed_stats(parsed) is None)
    assert from_json is None or from_json == _per_entry(parsed)[0]


def test_a_value_the_reader_would_drop_or_cut_sends_the_entry_to_it() -> None:
    """A float counter, an id past int64, a codec with a final newline, an unknown key: each
    is read entry by entry, as before."""
    base = FIXTURE_ENTRIES[0]
    changes: list[dict[str, Any]] = [
        {"rtt": 1.5}, {"lost": 2**63}, {"codec": "vp8\n"}, {"extra": 1}, {"mid": ""},
        {"media": "v" * 300}, {"mindex": True},
    ]  # fmt: skip
    for change in changes:
        assert typed_stats([{**base, **change}]) is None, change
    assert typed_stats([base, 7]) is None
    assert typed_stats([base]) is not None
