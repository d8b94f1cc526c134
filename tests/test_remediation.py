"""monitor.remediation: the policy on a fake clock, the executor with fake Janus clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config
from monitor.janus.errors import PluginError
from monitor.remediation.audit import AuditLog
from monitor.remediation.executor import Remediator
from monitor.remediation.policy import PACE, Decision, Ladder, Ladders, decide
from monitor.signals import Signals
from monitor.state import RemovalHooks, Router, State, membership_table
from monitor.telemetry import Telemetry
from tests.conftest import make_config
from tests.test_state import SERVER, ev

VIDEOROOM = "janus.plugin.videoroom"
PUB = (1, 10)


def settings(**over: Any) -> Config:
    rules = {"sustain": "10s", "step_interval": "10s", "tolerance": 1.25, **over.pop("rules", {})}
    remediation = {"mode": over.pop("mode", "enforce"), "over_bitrate": rules, **over}
    text = json.dumps({
        "targets": [{"name": SERVER, "poll_interval": "1s",
                     "room_secrets": {"100": "room-secret-x"}}],
        "remediation": remediation,
    })  # fmt: skip
    return make_config(text)


class Lab:
    """A state with signals, one publisher in room 100, and a fake clock."""

    def __init__(self, cap: int | None = 128_000, display: str = "alice") -> None:
        hooks, router, self.signals = RemovalHooks(), Router(), Signals()
        self.signals.register(router, hooks)
        self.state = State(targets=(SERVER,), table=membership_table(router), hooks=hooks)
        self.ladders = Ladders()
        self.now = 1000.0
        data = {"event": "joined", "room": 100, "id": 7, "display": display}
        self.apply(ev({"plugin": VIDEOROOM, "data": data}, 64, *PUB))
        published = {"event": "published", "room": 100, "id": 7, "streams": []}
        self.apply(ev({"plugin": VIDEOROOM, "data": published}, 64, *PUB))
        if cap is not None:
            self.state.servers[SERVER].rooms["100"].bitrate_cap = cap

    def apply(self, event: Any) -> None:
        self.state.apply(event, self.now)

    def send(self, bps: int) -> None:
        stats = [{"mid": "0", "media": "video", "bytes-received-lastsec": bps // 8,
                  "bytes-received": 1}]  # fmt: skip
        self.apply(ev(stats, 32, *PUB, subtype=3))

    def run(self, config: Config, bps: int | None, seconds: int) -> list[tuple[float, str]]:
        """Each second: stats at bps (None: no stats), then the policy; what it decided."""
        steps = []
        for _ in range(seconds):
            self.now += 1
            if bps is not None:
                self.send(bps)
            for d in decide(self.state, self.signals.bitrate, config, self.ladders, self.now):
                steps.append((self.now - 1000.0, d.step))
        return steps


def test_cap_after_sustain_then_kick_after_step_interval() -> None:
    """Over for 10 s: cap_bitrate; still over 10 s later: kick; nothing after the last step."""
    lab = Lab()
    assert lab.run(settings(), 300_000, 40) == [(11.0, "cap_bitrate"), (21.0, "kick")]


def test_a_publisher_that_complies_is_never_kicked() -> None:
    """Capped, then under cap x tolerance: the ladder resets; over again starts at cap."""
    lab = Lab()
    assert lab.run(settings(), 300_000, 11) == [(11.0, "cap_bitrate")]
    assert lab.run(settings(), 150_000, 30) == []
    assert lab.run(settings(), 300_000, 11)[0][1] == "cap_bitrate"


def test_stale_or_absent_data_is_never_acted_on() -> None:
    """Without fresh stats (twice the stats period, at least poll_interval) nothing happens."""
    lab = Lab()
    lab.run(settings(), 300_000, 5)
    assert lab.run(settings(), None, 30) == []


def test_uncapped_rooms_are_left_alone_unless_a_default_cap_is_set() -> None:
    """A room without a cap is only reported; over_bitrate.default_cap gives it one."""
    assert Lab(cap=0).run(settings(), 900_000, 30) == []
    config = settings(rules={"default_cap": 500_000})
    assert Lab(cap=0).run(config, 900_000, 12) == [(11.0, "cap_bitrate")]


@pytest.mark.parametrize(
    "over", [{"rules": {"exempt_rooms": ["100"]}}, {"rules": {"exempt_display_regex": "^ali"}},
             {"mode": "off"}],
)  # fmt: skip
def test_exemptions_and_off(over: dict[str, Any]) -> None:
    """Exempt rooms, exempt displays, and mode off: no decision at all."""
    assert Lab().run(settings(**over), 300_000, 30) == []


def test_a_publisher_that_left_is_forgotten() -> None:
    """Its ladder goes with it: nothing is decided for a publisher no longer in the room."""
    lab = Lab()
    lab.run(settings(), 300_000, 5)
    lab.apply(ev({"plugin": VIDEOROOM, "data": {"event": "leaving", "room": 100, "id": 7}}, 64))
    assert lab.run(settings(), 300_000, 30) == []
    assert lab.ladders.by_publisher == {}


# --- the executor ------------------------------------------------------------------------------


class FakeApi:
    def __init__(self) -> None:
        self.capped: list[tuple[int, int, int]] = []

    async def configure_bitrate(self, session: int, handle: int, bitrate: int) -> None:
        self.capped.append((session, handle, bitrate))


class FakeAdmin:
    def __init__(self, fail: PluginError | None = None) -> None:
        self.fail = fail
        self.sent: list[dict[str, Any]] = []

    async def message_plugin(self, plugin: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        if self.fail is not None:
            raise self.fail
        return {"videoroom": "success"}


class FakeClients:
    def __init__(self, api: FakeApi | None, admin: FakeAdmin | None) -> None:
        self._api, self._admin = api, admin

    def api(self, name: str) -> FakeApi | None:
        return self._api

    def admin(self, name: str) -> FakeAdmin | None:
        return self._admin


def decision(step: str, publisher: str = "7") -> Decision:
    return Decision(SERVER, "100", publisher, "alice", 1, 10, step, 300_000.0, 128_000, 1.25,
                    1000.0)  # fmt: skip


def remediator(tmp_path: Path, api: Any, admin: Any) -> tuple[Remediator, Telemetry, Path]:
    telemetry, path = Telemetry(), tmp_path / "audit" / "actions.jsonl"
    runner = Remediator(FakeClients(api, admin), AuditLog(str(path)), telemetry)  # type: ignore[arg-type]
    return runner, telemetry, path


def audited(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_dry_run_touches_nothing_and_audits(tmp_path: Path) -> None:
    """dry_run: the decision is audited (fsync'd line) and counted; Janus is not called."""
    api, admin = FakeApi(), FakeAdmin()
    runner, telemetry, path = remediator(tmp_path, api, admin)
    await runner._carry_out(decision("cap_bitrate"), settings(mode="dry_run"), State(), 1.0)
    assert api.capped == [] and admin.sent == []
    (entry,) = audited(path)
    assert (entry["step"], entry["mode"], entry["outcome"]) == ("cap_bitrate", "dry_run", "dry_run")
    assert telemetry.remediation == {(SERVER, "cap_bitrate", "dry_run"): 1}


async def test_enforce_caps_and_kicks_with_the_room_secret_never_audited(tmp_path: Path) -> None:
    """enforce: configure on the publisher's own handle with the cap; kick with the room's
    secret in the request, never in the audit line."""
    api, admin = FakeApi(), FakeAdmin()
    runner, telemetry, path = remediator(tmp_path, api, admin)
    for step in ("cap_bitrate", "kick"):
        await runner._carry_out(decision(step), settings(), State(), 1.0)
    assert api.capped == [(1, 10, 128_000)]
    assert admin.sent == [{"request": "kick", "room": 100, "id": 7, "secret": "room-secret-x"}]
    assert [e["outcome"] for e in audited(path)] == ["applied", "applied"]
    assert "room-secret-x" not in path.read_text()
    assert telemetry.remediation == {
        (SERVER, "cap_bitrate", "applied"): 1,
        (SERVER, "kick", "applied"): 1,
    }


async def test_a_failure_is_retried_once_then_reported_with_janus_code(tmp_path: Path) -> None:
    """A kick refused with 433 (wrong secret) twice: failed, 2 attempts, code 433."""
    refused = PluginError("message_plugin:kick", "Unauthorized (wrong secret)", code=433)
    admin = FakeAdmin(fail=refused)
    runner, telemetry, path = remediator(tmp_path, FakeApi(), admin)
    await runner._carry_out(decision("kick"), settings(), State(), 1.0)
    (entry,) = audited(path)
    assert (entry["outcome"], entry["attempts"], entry["error_code"]) == ("failed", 2, 433)
    assert len(admin.sent) == 2
    assert telemetry.remediation == {(SERVER, "kick", "failed"): 1}


async def test_the_rate_limit_holds_per_target(tmp_path: Path) -> None:
    """max_actions_per_minute 1: the first of three goes out, the others are rate_limited."""
    api = FakeApi()
    runner, _, path = remediator(tmp_path, api, FakeAdmin())
    config = settings(max_actions_per_minute=1)
    for publisher in ("7", "8", "9"):
        await runner._carry_out(decision("cap_bitrate", publisher), config, State(), 1.0)
    assert [e["outcome"] for e in audited(path)] == ["applied", "rate_limited", "rate_limited"]
    assert len(api.capped) == 1


async def test_without_a_client_the_action_is_skipped(tmp_path: Path) -> None:
    """No janus_url: cap_bitrate is skipped, saying why; no retry."""
    runner, _, path = remediator(tmp_path, None, None)
    await runner._carry_out(decision("cap_bitrate"), settings(), State(), 1.0)
    (entry,) = audited(path)
    assert entry["outcome"] == "skipped" and "janus_url" in entry["error"]


async def test_a_restarted_daemon_keeps_and_shows_the_audit(tmp_path: Path) -> None:
    """The audit file is appended to, never rewritten; a new AuditLog on it (a restart)
    shows the earlier decisions and adds after them."""
    path = tmp_path / "actions.jsonl"
    first = AuditLog(str(path))
    await first.write({"server": SERVER, "step": "cap_bitrate", "outcome": "applied"})
    second = AuditLog(str(path))
    assert [e["step"] for e in second.recent] == ["cap_bitrate"]
    await second.write({"server": SERVER, "step": "kick", "outcome": "applied"})
    assert [e["step"] for e in audited(path)] == ["cap_bitrate", "kick"]


def test_ladders_of_publishers_that_left_are_dropped_with_pauses_between() -> None:
    """forget_gone drops every ladder whose publisher is gone, and lets the loop go every
    PACE ladders instead of walking 10 k in one go."""
    ladders = Ladders()
    for n in range(100):
        ladders.by_publisher[(SERVER, "1234", str(n))] = Ladder()
    pauses = list(ladders.forget_gone(State(targets=(SERVER,))))
    assert pauses == [None] * (100 // PACE)
    assert ladders.by_publisher == {}
