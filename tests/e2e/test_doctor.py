"""`janus-monitor doctor` against real Janus 1.1.2 servers: a misconfigured one (no public-ip,
an uncapped room, no event handler, another server_name, no VideoRoom admin_key) gives those
findings and exit 1; a well-configured one wired to a running daemon exits 0."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from lab.janus import JanusLabConfig, JanusProcess, LabRoom, free_ports, write_janus_config
from monitor.doctor import doctor
from tests.conftest import make_config
from tests.e2e.conftest import JanusLab

pytestmark = pytest.mark.e2e


def target_yaml(cfg: JanusLabConfig, name: str, listen: str = "127.0.0.1:9") -> str:
    return (
        f"listen: {listen!r}\n"
        f"targets: [{{name: {name}, admin_url: {cfg.admin_url!r}, "
        f"admin_secret: {cfg.admin_secret!r}}}]\n"
    )


async def run_doctor(yaml_text: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await doctor(make_config(yaml_text), out=out)
    return code, out.getvalue()


async def test_a_misconfigured_janus_gets_its_findings_and_exit_1(
    lab_netns: Any, janus_binary: str, tmp_path: Path
) -> None:
    """No public-ip, room 2003 uncapped, no event handler, server_name not the target's name,
    no admin_key: each is a finding; exit 1. A wrong secret is a finding, never a secret."""
    http_port, admin_port, ws_port = free_ports(3)
    cfg = JanusLabConfig(
        server_name="some-other-name", http_port=http_port, admin_port=admin_port,
        ws_port=ws_port, rooms=(LabRoom(1234), LabRoom(2003, bitrate=0, bitrate_cap=False)),
        events_broadcast=False,
    )  # fmt: skip
    write_janus_config(tmp_path / "conf", cfg)
    janus = await asyncio.to_thread(
        JanusProcess(cfg, binary=janus_binary).start, tmp_path / "conf", tmp_path / "janus.log"
    )
    try:
        code, text = await run_doctor(target_yaml(cfg, "janus-1"))
        print(text)
        assert code == 1
        assert "ERROR   janus-1: Janus calls itself 'some-other-name'" in text
        assert "WARNING janus-1: no public-ip" in text
        assert "rooms without a bitrate cap: 2003" in text
        assert "ERROR   janus-1: no event handler loaded" in text
        assert "VideoRoom admin_key not set" in text
        wrong = target_yaml(cfg, "janus-1").replace(cfg.admin_secret, "not-the-secret")
        code, text = await run_doctor(wrong)
        assert code == 1 and "admin_secret refused (403)" in text
        assert "not-the-secret" not in text and cfg.admin_secret not in text
    finally:
        await asyncio.to_thread(janus.stop)


@pytest.mark.parametrize(
    "janus_settings",
    [{"nat_1_1_mapping": "127.0.0.1", "videoroom_admin_key": "lab-videoroom-admin-key"}],
    indirect=True,
)
async def test_a_well_configured_janus_exits_0(janus_lab: JanusLab) -> None:
    """Named like its target, rooms capped, admin_key set, events reaching the running
    daemon: no error (the loopback public-ip of the lab is a warning), exit 0."""
    listen = janus_lab.daemon.base.removeprefix("http://")
    code, text = await run_doctor(target_yaml(janus_lab.cfg, janus_lab.name, listen))
    print(text)
    assert code == 0, text
    assert "OK      janus-e2e: events reach the daemon" in text
    assert "OK      janus-e2e: VideoRoom admin_key set" in text
    assert "public-ip 127.0.0.1 is itself loopback" in text
    assert "ERROR" not in text
