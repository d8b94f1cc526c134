"""The audit log: one JSON line per decision, appended and fsync'd off the event loop, plus
the recent ones in memory for /api/v1/actions. Entries never hold a secret: they are built
from decisions and Janus's replies (the Admin client scrubs those of what it sent)."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from monitor.logs import loggable

RECENT = 500


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._lock = asyncio.Lock()  # lines go out whole and in order
        self._load_recent()

    def _load_recent(self) -> None:
        """A restarted daemon shows the decisions already audited (the file stays intact)."""
        try:
            with self.path.open("rb") as audit:
                audit.seek(0, os.SEEK_END)
                audit.seek(max(0, audit.tell() - RECENT * 1024))
                tail = audit.read().splitlines()
        except OSError:
            return
        for line in tail[-RECENT:]:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a partial first line of the tail, or a damaged one
            if isinstance(entry, dict) and "server" in entry:
                self.recent.append(entry)

    async def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(loggable(entry)) + b"\n"
        self.recent.append(entry)
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as out:  # append only: a restart keeps what was written
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
