"""Remediation on a real Janus 1.1.2 with aiortc and Chromium publishers: cap, then kick,
publishers that stay over their room's cap; the compliant are never touched; dry_run touches
nobody; a reload to enforce takes effect at once; wrong secrets fail with Janus's code; the
rate limit holds. aiortc never encodes VP8 below about 250 kbps, so in a room capped at
128 kbps its publisher stays over whatever REMB says: a real over-cap publisher."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from lab.janus import LabRoom
from monitor.config import Secret
from monitor.janus.admin import AdminClient
from tests.conftest import sample
from tests.e2e.conftest import JanusLab, PublishFactory

pytestmark = pytest.mark.e2e

CAPPED, ROOMY, OPEN, LOCKED = 2001, 2002, 2003, 2004
RULES = {"sustain": "2s", "step_interval": "3s", "tolerance": 1.25}


@pytest.fixture
def janus_settings() -> dict[str, Any]:
    return {
        "rooms": (
            LabRoom(1234),
            LabRoom(CAPPED, bitrate=128_000),
            LabRoom(ROOMY, bitrate=2_000_000),
            LabRoom(OPEN, bitrate=0, bitrate_cap=False),
            LabRoom(LOCKED, bitrate=128_000, secret="the-right-secret"),
        )
    }


def audit(lab: JanusLab) -> list[dict[str, Any]]:
    path = lab.daemon.runtime.audit.path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def entries(lab: JanusLab, publisher: Any, **match: Any) -> list[dict[str, Any]]:
    return [
        e for e in audit(lab)
        if e["publisher"] == str(publisher.id) and all(e[k] == v for k, v in match.items())
    ]  # fmt: skip


async def participants(lab: JanusLab, room: int) -> set[int]:
    async with aiohttp.ClientSession() as http:
        admin = AdminClient(http, lab.cfg.admin_url, Secret(lab.cfg.admin_secret))
        reply = await admin.message_plugin(
            "janus.plugin.videoroom", {"request": "listparticipants", "room": room}
        )
    return {int(p["id"]) for p in reply["participants"]}


async def reload_with(lab: JanusLab, tmp_path: Path, remediation: dict[str, Any]) -> None:
    """Write the running config with a new remediation section, then POST /-/reload."""
    runtime = lab.daemon.runtime
    config = {
        "webhook": {"path": "/events"},
        "targets": [{
            "name": lab.name, "admin_url": lab.cfg.admin_url, "admin_secret": lab.cfg.admin_secret,
            "janus_url": lab.cfg.janus_url, "poll_interval": "1s", "reconcile_interval": "3s",
        }],
        "remediation": {"audit_log": str(runtime.audit.path), **remediation},
    }  # fmt: skip
    path = tmp_path / "janus-monitor.yml"
    path.write_text(yaml.safe_dump(config))
    runtime.reloader.path = path
    async with lab.daemon.http.post(lab.daemon.url("/-/reload")) as response:
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "daemon_settings", [{"remediation": {"mode": "enforce", "over_bitrate": RULES}}], indirect=True
)
async def test_over_cap_is_capped_then_kicked_and_the_compliant_is_spared(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """The over-cap publisher gets cap_bitrate, then a kick (gone from listparticipants, the
    `kicked` event seen); the compliant one in a 2 Mbps room is never touched."""
    mark = len(janus_lab.arrivals.events)
    over = await publish("over", room=CAPPED)
    started = time.monotonic()
    compliant = await publish("compliant", room=ROOMY)
    labels = {"server": janus_lab.name, "room": str(CAPPED), "publisher": str(over.id)}
    times: dict[str, float] = {}

    async def went_over() -> None:
        assert (
            sample(await janus_lab.samples(), "janus_videoroom_publisher_over_cap", **labels) == 1
        )
        times.setdefault("over", time.monotonic() - started)

    async def capped_then_kicked() -> None:
        if entries(janus_lab, over, step="cap_bitrate", outcome="applied"):
            times.setdefault("capped", time.monotonic() - started)
        assert entries(janus_lab, over, step="kick", outcome="applied")
        times.setdefault("kicked", time.monotonic() - started)
        assert over.id not in await participants(janus_lab, CAPPED)

    await janus_lab.eventually(went_over, "the publisher over its cap")
    await janus_lab.eventually(capped_then_kicked, "cap, then kick", within=20.0)
    arrived = janus_lab.arrivals.since(mark)
    assert "plugin:kicked" in arrived
    assert arrived.count("plugin:configured") == 3  # two publishes, one cap: nothing else
    assert entries(janus_lab, compliant) == []
    assert compliant.id in await participants(janus_lab, ROOMY)
    steps = [e["step"] for e in entries(janus_lab, over)]
    assert steps == ["cap_bitrate", "kick"]
    print(
        f"over the cap at {times['over']:.1f} s after webrtcup; capped at {times['capped']:.1f} s, "
        f"kicked at {times['kicked']:.1f} s (sustain 2 s, step_interval 3 s)"
    )
    samples = await janus_lab.samples()
    assert sample(samples, "janus_monitor_remediation_actions_total", server=janus_lab.name,
                  action="kick", outcome="applied") == 1  # fmt: skip


@pytest.mark.parametrize(
    "daemon_settings",
    [{"remediation": {"mode": "dry_run", "over_bitrate": RULES}}],
    indirect=True,
)
async def test_dry_run_touches_nobody_then_a_reload_enforces(
    janus_lab: JanusLab, publish: PublishFactory, tmp_path: Path
) -> None:
    """dry_run: decisions audited as dry_run, nobody kicked, the uncapped room never decided
    on. A reload to enforce with a default_cap then acts on both, without a restart."""
    over = await publish("over", room=CAPPED)
    open_room = await publish("open", room=OPEN)

    async def dry_run_decided() -> None:
        assert entries(janus_lab, over, mode="dry_run", outcome="dry_run", step="kick")

    await janus_lab.eventually(dry_run_decided, "dry_run decisions", within=20.0)
    assert over.id in await participants(janus_lab, CAPPED)
    assert entries(janus_lab, open_room) == []  # an uncapped room has nothing to enforce

    await reload_with(janus_lab, tmp_path, {
        "mode": "enforce", "over_bitrate": {**RULES, "default_cap": 200_000},
    })  # fmt: skip

    async def enforced() -> None:
        assert entries(janus_lab, open_room, mode="enforce", step="cap_bitrate", outcome="applied")
        assert over.id not in await participants(janus_lab, CAPPED)

    await janus_lab.eventually(enforced, "the reloaded mode at work", within=20.0)
    api = await janus_lab.daemon.get_json("/api/v1/actions")
    assert api["mode"] == "enforce"
    assert {(a["mode"], a["outcome"]) for a in api["actions"]} >= {
        ("dry_run", "dry_run"),
        ("enforce", "applied"),
    }


@pytest.mark.parametrize(
    "daemon_settings",
    [{
        "remediation": {"mode": "enforce", "max_actions_per_minute": 1,
                        "over_bitrate": {**RULES, "steps": ["kick"]}},
        "target": {"room_secrets": {str(LOCKED): "a-wrong-secret"}},
    }],
    indirect=True,
)  # fmt: skip
async def test_a_wrong_room_secret_fails_and_the_rate_limit_holds(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """Three over-cap publishers in a room whose secret the daemon has wrong: one kick goes
    out and fails with 433 (after one retry); the other two are rate_limited."""
    publishers = [await publish(f"p{n}", room=LOCKED) for n in range(3)]

    async def all_decided() -> None:
        outcomes = sorted(e["outcome"] for p in publishers for e in entries(janus_lab, p)[:1])
        assert outcomes == ["failed", "rate_limited", "rate_limited"], outcomes

    await janus_lab.eventually(all_decided, "one failure, two rate_limited", within=20.0)
    (failed,) = [e for p in publishers for e in entries(janus_lab, p, outcome="failed")][:1]
    assert (failed["error_code"], failed["attempts"]) == (433, 2)
    assert "a-wrong-secret" not in janus_lab.daemon.runtime.audit.path.read_text()
    assert {p.id for p in publishers} <= await participants(janus_lab, LOCKED)
