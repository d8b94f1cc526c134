"""bench.replay's bodies: what the 1 M-event benchmark sends must all be applied."""

from __future__ import annotations

from bench.replay import bodies
from monitor.ingest.duplicates import DuplicateBatches


def test_no_two_replay_bodies_are_alike() -> None:
    """Copies of events with no ids differ by their time, so the duplicate guard answers no
    body of the replay from memory (it did for 47% of them)."""
    guard = DuplicateBatches()
    digests = [guard.digest(body, None) for _, body in bodies(200_000)]
    assert len(digests) > 1_900
    assert len(set(digests)) == len(digests)
