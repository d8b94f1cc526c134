"""`make run-fleet` (python -m lab.fleet) as someone trying failover by hand uses it: the
broker, two Janus and two daemons come up, ownership lines show the shards split, a killed
daemon's shards move to the other, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lab.janus import port_is_free

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent
OWNERSHIP = re.compile(r"daemon-0: (.*)  \|  daemon-1: (.*)")


def next_line(proc: subprocess.Popen[str], seen: list[str], pattern: str, within: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return line.rstrip("\n")
    raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(seen))


def test_run_fleet_shows_sharding_and_failover(lab_netns: Any, janus_binary: str) -> None:
    """The two daemons end with four shards each; killing one gives the other all eight;
    SIGINT stops the Janus, the daemons and the broker."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lab.fleet"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    seen: list[str] = []
    try:
        pids = [int(next_line(proc, seen, rf"daemon-{i}: .* pid (\d+)", 60).split("pid ")[1]
                    .split()[0]) for i in range(2)]  # fmt: skip
        ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)/metrics", "\n".join(seen))]
        split = r"daemon-0: shards \[(\d,?){4}\] .*daemon-1: shards \[(\d,?){4}\]"
        next_line(proc, seen, split, 60)
        os.kill(pids[1], signal.SIGKILL)
        next_line(proc, seen, r"daemon-0: shards \[0,1,2,3,4,5,6,7\] janus \[janus-a,janus-b\]"
                  r"  \|  daemon-1: down", 20)  # fmt: skip
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "\n".join(seen)
        assert proc.stdout is not None
        seen += proc.stdout.read().splitlines()
        assert any(line.startswith("stopped;") for line in seen), seen
        assert all(port_is_free(port) for port in ports)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
