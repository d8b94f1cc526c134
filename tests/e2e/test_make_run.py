"""`make run` (python -m lab.run) as a newcomer uses it: the daemon, a local Janus, a
Prometheus with the rules and an Alertmanager, all on 127.0.0.1; Ctrl-C stops all of them,
even when the terminal's pipe is already gone (`make run | tee log`, then Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from lab.janus import port_is_free

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return orjson.loads(reply.read())


def urls(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.match(r"\s+(prometheus|alertmanager)\s+(http://\S+)", line)
        if match:
            found[match.group(1)] = match.group(2)
        match = re.match(r"\s+metrics\s+(http://\S+)/metrics", line)
        if match:
            found["daemon"] = match.group(1)
    return found


def start(janus_binary: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "lab.run"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def read_until_up(proc: subprocess.Popen[str], within: float = 60.0) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("  the alert rules are loaded"):
            return lines
    raise AssertionError("make run did not come up:\n" + "\n".join(lines))


def wait_ports_free(ports: list[int], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while any(not port_is_free(p) for p in ports):
        assert time.monotonic() < deadline, (
            f"still bound: {[p for p in ports if not port_is_free(p)]}"
        )
        time.sleep(0.2)


def test_make_run_shows_the_whole_stack_and_stops_it(lab_netns: Any, janus_binary: str) -> None:
    """The banner lists daemon, Janus, Prometheus and Alertmanager; Prometheus scrapes the
    daemon with the rules loaded; Ctrl-C after the pipe closed still stops everything."""
    proc = start(janus_binary)
    try:
        lines = read_until_up(proc)
        found = urls(lines)
        assert set(found) == {"daemon", "prometheus", "alertmanager"}, lines
        rules = get_json(found["prometheus"] + "/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in rules} == {"janus-monitor.recording", "janus-monitor.alerts"}
        deadline = time.monotonic() + 30
        while True:
            targets = get_json(found["prometheus"] + "/api/v1/targets")["data"]["activeTargets"]
            if targets and targets[0]["health"] == "up":
                break
            assert time.monotonic() < deadline, targets
            time.sleep(0.5)
        assert get_json(found["alertmanager"] + "/api/v2/status")["cluster"]["status"] in (
            "disabled",
            "ready",
        )
        ports = [int(u.rsplit(":", 1)[1]) for u in found.values()]
        assert proc.stdout is not None
        proc.stdout.close()  # the terminal (tee) is gone before Ctrl-C
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        wait_ports_free(ports)
    finally:
        if proc.poll() is None:
            proc.kill()
