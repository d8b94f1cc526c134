"""What /-/ready waits for: named gates (e.g. each target's first poll), passed once."""

from __future__ import annotations


class Readiness:
    def __init__(self) -> None:
        self._waiting: set[str] = set()

    def wait_for(self, gate: str) -> None:
        self._waiting.add(gate)

    def passed(self, gate: str) -> None:
        self._waiting.discard(gate)

    @property
    def ready(self) -> bool:
        return not self._waiting

    @property
    def waiting(self) -> list[str]:
        return sorted(self._waiting)
