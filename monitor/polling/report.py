"""What a poll did, and the one line it logs: at info only when it found or did something;
a target going down or coming back, and a Janus that calls itself by another name, logged
once per change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from monitor.state import Server

if TYPE_CHECKING:
    from monitor.polling.poller import Poller

log = structlog.get_logger("monitor.poller")


@dataclass(slots=True)
class PollReport:
    requests: int = 0
    busy: float = 0.0
    handles_listed: int = 0
    handles_explained: int = 0
    rooms_checked: int = 0
    media_fetched: int = 0


class PollLog:
    def __init__(self, was_up: bool | None = None) -> None:
        # A poller restarted by a reload continues its predecessor's story (the target's
        # PollStats outlive pollers): a target still down is not announced down again.
        self._was_up: bool | None = was_up
        self._mismatch: str | None = None

    def log(
        self, poller: Poller, server: Server | None, duration: float, error: str | None
    ) -> None:
        stats, report, name = poller.stats, poller._report, poller.name
        fields = {
            "server": name,
            "up": stats.up,
            "duration_ms": round(duration * 1000, 1),
            "requests": report.requests,
            "busy_ms": round(report.busy * 1000, 2),
            "budget_used": round(stats.budget_used(poller.clock()), 4),
            "sessions": len(server.sessions) if server else 0,
            "handles": server.handle_count if server else 0,
            "handles_listed": report.handles_listed,
            "handles_explained": report.handles_explained,
            "rooms_checked": report.rooms_checked,
            "media_fetched": report.media_fetched,
        }
        if stats.up != self._was_up and stats.up is not None:
            if stats.up:
                log.info("target_up", server=name, after_polls=poller.polls)
            else:
                log.warning("target_down", server=name, error=error)
            self._was_up = stats.up
        self._check_identity(name, server)
        busy = report.handles_listed or report.handles_explained or report.rooms_checked
        if error is not None and stats.up:
            log.warning("poll", error=error, **fields)
        elif busy or report.media_fetched:
            log.info("poll", **fields)
        else:
            log.debug("poll", error=error, **fields)

    def _check_identity(self, name: str, server: Server | None) -> None:
        """A target whose Janus calls itself something else gets its events under the other
        name (the emitter): say so once, with the fix."""
        info = server.info if server is not None else None
        reported = info.server_name if info is not None else None
        if reported and reported != name and reported != self._mismatch:
            self._mismatch = reported
            log.warning(
                "target_identity_mismatch",
                server=name,
                server_name=reported,
                fix=f'set general.server_name = "{name}" in janus.jcfg, or name the '
                f"target {reported!r}: events carry server_name as their emitter",
            )
