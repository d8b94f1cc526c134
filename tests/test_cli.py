"""The console entry point: `run` serves, SIGHUP reloads, SIGTERM stops cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from monitor import __version__
from tests.conftest import metric_samples, sample
from tests.test_config import EXAMPLE, EXAMPLE_ENV, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_version() -> None:
    """--version prints the package version."""
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == f"janus-monitor {__version__}"


def test_run_serves_the_readme_example_and_reloads_on_sighup(tmp_path: Path) -> None:
    """`run --config` with the README example serves /metrics; SIGHUP reloads; SIGTERM exits 0."""
    port = free_port()
    config = tmp_path / "janus-monitor.yml"
    text = EXAMPLE.read_text().replace('"127.0.0.1:9720"', f'"127.0.0.1:{port}"', 1)
    config.write_text(text)
    env = {"PATH": "/usr/bin:/bin", **EXAMPLE_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        metrics = wait_http(f"http://127.0.0.1:{port}/metrics").decode()
        assert sample(metric_samples(metrics), "janus_monitor_build_info", version=__version__) == 1
        config.write_text(text.replace("name: janus-1", "name: janus-2"))
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            servers = json.loads(wait_http(f"http://127.0.0.1:{port}/api/v1/servers"))
            if [s["name"] for s in servers["servers"] if s["configured"]] == ["janus-2"]:
                break
            assert time.monotonic() < deadline, servers
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events[0] == "started" and "config_reloaded" in events and events[-1] == "stopping"
    for secret in EXAMPLE_ENV.values():
        assert secret not in output.decode()


def test_run_refuses_an_invalid_config(tmp_path: Path) -> None:
    """`run` with an invalid config exits 2 before serving, naming the key."""
    config = tmp_path / "bad.yml"
    config.write_text("listen: nowhere\n")
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("janus-monitor: invalid config: listen: must be host:port")


def test_run_reports_a_busy_port(tmp_path: Path) -> None:
    """`run` on a port already in use exits 1 with a clear message."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.yml"
        config.write_text(f"listen: 127.0.0.1:{port}\n")
        out = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            timeout=20,
        )
    assert out.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in out.stderr


def test_doctor_names_an_unreachable_target_and_exits_1(tmp_path: Path, capsys: Any) -> None:
    """doctor with a target whose Admin API does not answer: one error finding, exit 1, no
    traceback and no secret."""
    from monitor.cli import main

    config = tmp_path / "janus-monitor.yml"
    config.write_text(
        "targets: [{name: j1, admin_url: 'http://127.0.0.1:9/admin', admin_secret: s3cr3t-x}]\n"
    )
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "ERROR   j1: the Admin API does not answer" in out
    assert "s3cr3t-x" not in out and "Traceback" not in out
