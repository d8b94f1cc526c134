"""Batches sampleevh sent twice: a retransmission after a transport error is the same bytes.

sampleevh never checks the HTTP status; it resends the same serialized batch only when libcurl
reports a transport error, a 10 s timeout included, so a batch we took while Janus gave up
waiting arrives again. Events carry microsecond timestamps, so two distinct batches with the
same bytes do not happen in practice; a body seen again within the window is answered as the
first was and not applied again. Pure: the receiver gives the clock.

The guard holds every body of the last window: 12 k at 20 k events/s in 100-event batches and
the default 60 s. Kept as a (bytes digest, tuple, float, answer dict) per body, that was 7 MB
of RSS, 13% of the daemon's at that rate. Here each body costs one int in a dict, a slot in a
packed array of arrival times, and a reference to an answer shared with every batch answered
alike.
"""

from __future__ import annotations

from array import array
from itertools import islice
from typing import Any

import xxhash

# At 20 k events/s in 100-event batches and a 60 s window: 12 k entries.
MAX_REMEMBERED = 100_000
MAX_SHARED_ANSWERS = 4096  # distinct error-free answers kept for sharing: (accepted, rejected)
_PLAIN_ANSWER = frozenset(("accepted", "rejected"))


class DuplicateBatches:
    """Digests of recent bodies (with their encoding) and the answer each got, oldest first."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self.max_remembered = max_remembered
        # Insertion order is arrival order, and _times[_oldest:] holds the arrival time of each
        # digest in that order: expiry drops from the front of both.
        self._answers: dict[int, dict[str, Any]] = {}
        self._times = array("d")
        self._oldest = 0
        self._shared: dict[tuple[Any, Any], dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def digest(self, raw: bytes, encoding: str | None) -> int:
        """128 bits of the body, hashed with a seed of its encoding: the same bytes gzipped and
        plain are two bodies."""
        if encoding is None:
            return xxhash.xxh3_128_intdigest(raw)
        seed = xxhash.xxh3_64_intdigest(encoding.encode("latin-1", "replace"))
        return xxhash.xxh3_128_intdigest(raw, seed)

    def seen(self, digest: int, now: float, window: float) -> dict[str, Any] | None:
        """The answer the first copy got, if this body arrived within the window."""
        self._expire(now - window)
        return self._answers.get(digest)

    def remember(self, digest: int, now: float, answer: dict[str, Any]) -> None:
        if digest in self._answers:  # kept where it is: the window runs from the first copy
            self._answers[digest] = self._share(answer)
            return
        self._answers[digest] = self._share(answer)
        self._times.append(now)
        if len(self._answers) > self.max_remembered:
            del self._answers[next(iter(self._answers))]
            self._oldest += 1
        self._compact()

    def _share(self, answer: dict[str, Any]) -> dict[str, Any]:
        """One dict for every answer with the same counts and no errors (nearly all of them)."""
        if answer.keys() != _PLAIN_ANSWER:
            return answer
        key = (answer["accepted"], answer["rejected"])
        shared = self._shared.get(key)
        if shared is None:
            if len(self._shared) >= MAX_SHARED_ANSWERS:
                return answer
            shared = self._shared[key] = answer
        return shared

    def _expire(self, horizon: float) -> None:
        times, start = self._times, self._oldest
        end = start
        while end < len(times) and times[end] <= horizon:
            end += 1
        if end == start:
            return
        # One walk from the front: next(iter()) after many deletions at the front rescans the
        # deleted slots each time.
        for digest in list(islice(self._answers, end - start)):
            del self._answers[digest]
        self._oldest = end
        self._compact()

    def _compact(self) -> None:
        if self._oldest > 1024 and self._oldest * 2 > len(self._times):
            del self._times[: self._oldest]
            self._oldest = 0
