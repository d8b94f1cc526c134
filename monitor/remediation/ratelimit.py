"""At most ``max_actions_per_minute`` actions per target, over a sliding minute."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0


class RateLimiter:
    def __init__(self) -> None:
        self._sent: dict[str, deque[float]] = {}

    def allow(self, target: str, limit: int, now: float) -> bool:
        """Whether one more action may go to ``target`` now; if so, it is counted."""
        sent = self._sent.setdefault(target, deque())
        while sent and sent[0] <= now - WINDOW:
            sent.popleft()
        if len(sent) >= limit:
            return False
        sent.append(now)
        return True
