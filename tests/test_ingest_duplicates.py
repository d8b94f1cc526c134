"""The webhook's duplicate-batch guard: a body resent within the window is answered, not applied."""

from __future__ import annotations

import gzip

import orjson

from monitor.ingest.duplicates import DuplicateBatches
from tests.conftest import make_config, run_daemon, sample

SERVER = "janus-lab-1"


def created(session: int, timestamp: int = 1) -> dict[str, object]:
    return {"emitter": SERVER, "type": 1, "timestamp": timestamp, "session_id": session,
            "event": {"name": "created"}}  # fmt: skip


def test_a_body_is_seen_again_only_within_the_window() -> None:
    """A digest is found within the window and forgotten after it; only its own answer returns."""
    guard = DuplicateBatches()
    first, other = guard.digest(b"[1]", None), guard.digest(b"[2]", None)
    guard.remember(first, 100.0, {"accepted": 1, "rejected": 0})
    assert guard.seen(first, 159.0, 60.0) == {"accepted": 1, "rejected": 0}
    assert guard.seen(other, 159.0, 60.0) is None
    assert guard.seen(first, 160.5, 60.0) is None
    assert len(guard) == 0


def test_the_same_bytes_under_another_encoding_are_another_body() -> None:
    """Identical bytes sent as identity and as gzip do not share a digest."""
    guard = DuplicateBatches()
    assert guard.digest(b"x", None) != guard.digest(b"x", "gzip")
    assert guard.digest(b"x", "gzip") == guard.digest(b"x", "gzip")


def test_the_guard_holds_at_most_its_bound() -> None:
    """Past max_remembered the oldest digest goes first."""
    guard = DuplicateBatches(max_remembered=3)
    digests = [guard.digest(bytes([n]), None) for n in range(4)]
    for n, digest in enumerate(digests):
        guard.remember(digest, float(n), {"accepted": n})
    assert len(guard) == 3
    assert guard.seen(digests[0], 4.0, 60.0) is None
    assert guard.seen(digests[3], 4.0, 60.0) == {"accepted": 3}


def test_a_steady_stream_keeps_exactly_the_window() -> None:
    """Bodies arriving for many windows: the guard finds every one of the last window, none
    older, and its arrival times do not pile up."""
    guard = DuplicateBatches()
    digests = [guard.digest(str(n).encode(), None) for n in range(20_000)]
    for n, digest in enumerate(digests):
        now = n / 4  # exact in binary: the window's edge is where the test says
        assert guard.seen(digest, now, 25.0) is None
        guard.remember(digest, now, {"accepted": n % 3, "rejected": 0})
    now = 19_999 / 4
    assert len(guard) == 100  # arrived less than 25 s before the last: 19 900 to 19 999
    assert guard.seen(digests[19_900], now, 25.0) == {"accepted": 19_900 % 3, "rejected": 0}
    assert guard.seen(digests[19_899], now, 25.0) is None
    assert len(guard._times) - guard._oldest == len(guard) and len(guard._times) < 4096


def test_answers_alike_are_one_object_and_answers_with_errors_their_own() -> None:
    """Error-free answers with the same counts share one dict; an answer with errors is kept."""
    guard = DuplicateBatches()
    one, two, three = (guard.digest(bytes([n]), None) for n in range(3))
    guard.remember(one, 1.0, {"accepted": 100, "rejected": 0})
    guard.remember(two, 1.0, {"accepted": 100, "rejected": 0})
    errors = {"accepted": 1, "rejected": 1, "errors": [{"index": 1, "error": "bad"}]}
    guard.remember(three, 1.0, errors)
    assert guard.seen(one, 2.0, 60.0) is guard.seen(two, 2.0, 60.0)
    assert guard.seen(three, 2.0, 60.0) == errors


async def test_a_resent_batch_is_answered_as_before_and_counted_once() -> None:
    """The same body twice: the second answer repeats the first with duplicate true, the events
    are counted once and the resend once under duplicate_batch; a new body is applied."""
    async for daemon in run_daemon(make_config(f"targets: [{{name: {SERVER}}}]")):
        body = orjson.dumps([created(1), created(2), {"type": "bad"}])
        first = await daemon.post_events(body)
        again = await daemon.post_events(body)
        fresh = await daemon.post_events(orjson.dumps([created(3, timestamp=2)]))
        assert first[:2] == (200, {"accepted": 2, "rejected": 1, "errors": first[1]["errors"]})
        assert again[:2] == (200, {**first[1], "duplicate": True})
        assert fresh[:2] == (200, {"accepted": 1, "rejected": 0})
        samples = await daemon.metrics()
        received = "janus_monitor_events_received_total"
        assert sample(samples, received, server=SERVER, type="session") == 3
        rejected = "janus_monitor_events_rejected_total"
        assert sample(samples, rejected, reason="duplicate_batch") == 1
        assert sample(samples, rejected, reason="invalid_event") == 1
        assert sample(samples, "janus_monitor_tracked", kind="sessions") == 3


async def test_a_resent_gzip_body_is_caught_before_it_is_inflated() -> None:
    """A gzip body resent byte for byte is a duplicate too."""
    async for daemon in run_daemon(make_config(f"targets: [{{name: {SERVER}}}]")):
        body = gzip.compress(orjson.dumps([created(1)]))
        headers = {"Content-Encoding": "gzip"}
        assert (await daemon.post_events(body, headers))[1] == {"accepted": 1, "rejected": 0}
        assert (await daemon.post_events(body, headers))[1]["duplicate"] is True
        samples = await daemon.metrics()
        assert sample(samples, "janus_monitor_events_received_total", server=SERVER,
                      type="session") == 1  # fmt: skip


async def test_a_window_of_zero_applies_every_copy() -> None:
    """duplicate_window 0 turns the guard off: both copies are applied and counted."""
    config = make_config(f"webhook: {{duplicate_window: 0s}}\ntargets: [{{name: {SERVER}}}]")
    async for daemon in run_daemon(config):
        body = orjson.dumps([created(1)])
        for _ in range(2):
            assert (await daemon.post_events(body))[1] == {"accepted": 1, "rejected": 0}
        samples = await daemon.metrics()
        assert sample(samples, "janus_monitor_events_received_total", server=SERVER,
                      type="session") == 2  # fmt: skip
        assert sample(samples, "janus_monitor_events_rejected_total",
                      reason="duplicate_batch") == 0  # fmt: skip
