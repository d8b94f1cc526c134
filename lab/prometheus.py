"""A real Prometheus (Debian ``prometheus``) scraping the daemon with the rules loaded, and a
real Alertmanager (Debian ``prometheus-alertmanager``) it sends alerts to; both on
127.0.0.1 free ports, in a temp dir, for ``make run`` and the e2e suite."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lab.janus import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "alerts" / "janus-monitor.rules.yml"
ALERTMANAGER_CONFIG = REPO / "alerts" / "alertmanager.yml"


def binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def rules_with_short_for(source: Path, target: Path, seconds: int) -> Path:
    """A copy of the rules whose ``for:`` are ``seconds`` long: for watching alerts fire in a
    test (promtool's unit tests check the real durations)."""
    text = re.sub(r"^(\s+for: ).*$", rf"\g<1>{seconds}s", source.read_text(), flags=re.M)
    target.write_text(text)
    return target


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as reply:
            return orjson.loads(reply.read())

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}{path}", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} not ready after {timeout:g}s: {self.log.read_text()[-2000:]}"
        )

    def stop(self) -> None:
        stop_process(self.proc)


def _serve(name: str, args: list[str], port: int, work: Path) -> Service:
    """Start a server on 127.0.0.1:port (its args say so), logging to work/<name>.log; return
    it once its /-/ready answers."""
    log = work / f"{name}.log"
    proc = subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    service = Service(name, f"http://127.0.0.1:{port}", proc, log)
    service.wait_ready("/-/ready")
    return service


def start_alertmanager(
    work: Path, config: Path = ALERTMANAGER_CONFIG, port: int | None = None
) -> Service:
    exe = binary("prometheus-alertmanager", "alertmanager")
    if exe is None:
        raise FileNotFoundError("prometheus-alertmanager is not installed")
    port = port or free_port()
    (work / "alertmanager").mkdir(parents=True, exist_ok=True)
    args = [exe, f"--config.file={config}", f"--storage.path={work / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]  # fmt: skip
    return _serve("alertmanager", args, port, work)


def start_prometheus(
    work: Path, daemon: str | list[str], rules: Path = RULES, alertmanager: str | None = None,
    interval: str = "1s", port: int | None = None,
) -> Service:  # fmt: skip
    """``daemon`` (one or a fleet's) and ``alertmanager`` are host:port."""
    daemons = [daemon] if isinstance(daemon, str) else daemon
    targets = ", ".join(f"'{d}'" for d in daemons)
    exe = binary("prometheus")
    if exe is None:
        raise FileNotFoundError("prometheus is not installed")
    port = port or free_port()
    alerting = (
        f"alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{alertmanager}']}}]\n"
        if alertmanager
        else ""
    )
    config = work / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
        f"rule_files: ['{rules}']\n{alerting}"
        "scrape_configs:\n  - job_name: janus-monitor\n"
        f"    static_configs: [{{targets: [{targets}]}}]\n"
    )
    args = [exe, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h"]  # fmt: skip
    return _serve("prometheus", args, port, work)
