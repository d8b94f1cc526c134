"""Batches sampleevh sent twice: a retransmission after a transport error is the same bytes.

sampleevh never checks the HTTP status; it resends the same serialized batch only when libcurl
reports a transport error, a 10 s timeout included, so a batch we took while Janus gave up
waiting arrives again. Events carry microsecond timestamps, so two distinct batches with the
same bytes do not happen in practice; a body seen again within the window is answered as the
first was and not applied again. Pure: the receiver gives the clock.
"""

from __future__ import annotations

from typing import Any

import xxhash

# At 20 k events/s in 100-event batches and a 60 s window: 12 k entries, about 2 MB.
MAX_REMEMBERED = 100_000


class DuplicateBatches:
    """Digests of recent bodies (with their encoding) and the answer each got, oldest first."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self.max_remembered = max_remembered
        # Insertion order is arrival order: expiry pops from the front until the first to keep.
        self._seen: dict[bytes, tuple[float, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def digest(raw: bytes, encoding: str | None) -> bytes:
        tail = encoding.encode("latin-1", "replace") if encoding else b""
        return xxhash.xxh3_128_digest(raw) + tail

    def seen(self, digest: bytes, now: float, window: float) -> dict[str, Any] | None:
        """The answer the first copy got, if this body arrived within the window."""
        self._expire(now, window)
        entry = self._seen.get(digest)
        return None if entry is None else entry[1]

    def remember(self, digest: bytes, now: float, answer: dict[str, Any]) -> None:
        self._seen.pop(digest, None)
        self._seen[digest] = (now, answer)
        if len(self._seen) > self.max_remembered:
            del self._seen[next(iter(self._seen))]

    def _expire(self, now: float, window: float) -> None:
        # One walk from the front per call: next(iter()) after many deletions at the front
        # rescans the deleted slots each time.
        horizon = now - window
        expired = []
        for digest, (at, _) in self._seen.items():
            if at > horizon:
                break
            expired.append(digest)
        for digest in expired:
            del self._seen[digest]
