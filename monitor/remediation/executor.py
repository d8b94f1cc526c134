"""The one place remediation acts: each decision goes through the mode, the rate limit and
the action registry, is retried once if Janus fails it, and ends in one audit line, one
counter increment and one log line. Run every second by the wiring; never raises."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from monitor.config import Config
from monitor.janus.clients import JanusClients
from monitor.janus.errors import JanusError
from monitor.pacing import Pacer
from monitor.remediation.actions import ACTIONS, Unavailable
from monitor.remediation.audit import AuditLog
from monitor.remediation.policy import Decision, Ladders, decide_paced
from monitor.remediation.ratelimit import RateLimiter
from monitor.signals.bitrate import BitrateSignal
from monitor.state import State
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.remediation")

ATTEMPTS = 2  # a failed action is retried once


class Remediator:
    def __init__(
        self,
        clients: JanusClients,
        audit: AuditLog,
        telemetry: Telemetry,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.clients = clients
        self.audit = audit
        self.telemetry = telemetry
        self.wall = wall
        self.ladders = Ladders()
        self.limiter = RateLimiter()
        self._mode: str | None = None

    async def tick(self, config: Config, state: State, bitrate: BitrateSignal, now: float) -> int:
        """Decide and act; returns how many decisions were taken."""
        if config.remediation.mode != self._mode:
            # Steps decided in dry_run were never taken: enforce starts every ladder afresh.
            self.ladders, self._mode = Ladders(), config.remediation.mode
        decisions: list[Decision] = []
        pacer = Pacer()
        try:
            for decision in decide_paced(state, bitrate, config, self.ladders, now):
                if decision is None:
                    await pacer.pause()
                else:
                    decisions.append(decision)
        except Exception:  # a policy bug must not stop the daemon (nor the next tick)
            log.exception("remediation_policy_failed")
            return 0
        for decision in decisions:
            await self._carry_out(decision, config, state, now)
        return len(decisions)

    async def _carry_out(
        self, decision: Decision, config: Config, state: State, now: float
    ) -> None:
        remediation = config.remediation
        target = config.target(decision.server)
        reply: dict[str, Any] | None = None
        error: str | None = None
        code: int | None = None
        attempts = 0
        if target is None:
            outcome, error = "skipped", "the server is no longer a target"
        elif not self.limiter.allow(decision.server, remediation.max_actions_per_minute, now):
            outcome = "rate_limited"
        elif remediation.mode != "enforce":
            outcome = "dry_run"
        else:
            server = state.servers.get(decision.server)
            string_ids = server.string_ids if server is not None else None
            outcome = "failed"
            while attempts < ATTEMPTS:
                attempts += 1
                try:
                    reply = await ACTIONS[decision.step](self.clients, target, decision, string_ids)
                except Unavailable as exc:
                    outcome, error = "skipped", str(exc)
                    break
                except JanusError as exc:
                    error, code = str(exc), exc.code
                    continue
                except Exception as exc:  # an action bug: reported, the daemon goes on
                    log.exception("remediation_action_crashed", step=decision.step)
                    error = f"internal error: {exc.__class__.__name__}"
                    break
                outcome, error, code = "applied", None, None
                break
        await self._record(decision, remediation.mode, outcome, reply, error, code, attempts)

    async def _record(
        self,
        decision: Decision,
        mode: str,
        outcome: str,
        reply: dict[str, Any] | None,
        error: str | None,
        code: int | None,
        attempts: int,
    ) -> None:
        entry = {
            "time": round(self.wall(), 3),
            "server": decision.server,
            "room": decision.room,
            "publisher": decision.publisher,
            "display": decision.display,
            "session_id": decision.session_id,
            "handle_id": decision.handle_id,
            "measured_bps": round(decision.measured_bps),
            "cap": decision.cap,
            "tolerance": decision.tolerance,
            "step": decision.step,
            "mode": mode,
            "outcome": outcome,
            "attempts": attempts,
            "reply": reply,
            "error": error,
            "error_code": code,
        }
        self.telemetry.remediated(decision.server, decision.step, outcome)
        try:
            await self.audit.write(entry)
        except OSError as exc:  # a full disk must not stop remediation from being reported
            log.error("audit_write_failed", path=str(self.audit.path), error=str(exc))
        fields = {k: v for k, v in entry.items() if k not in ("time", "reply")}
        if outcome == "failed":
            log.warning("remediation_action", **fields)
        else:
            log.info("remediation_action", **fields)
