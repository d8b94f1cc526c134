"""The servers ``bench.ingest`` measures, each in its own subprocess: the daemon (and, with
``--baseline``, the daemon of another commit from its own worktree) and the bare receiver."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from bench.ingest_bodies import (
    DUPLICATE_WINDOW,
    EMITTER,
    REPO_ROOT,
    START_TIMEOUT,
    WEBHOOK_PATH,
    BenchError,
)
from lab.janus import stop_process

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def daemon_config(port: int, level: str, fmt: str, guard: bool = True) -> str:
    """The bench daemon's config; ``guard`` False leaves duplicate_window out (a baseline
    from before it, or the production default)."""
    window = f", duplicate_window: {DUPLICATE_WINDOW}" if guard else ""
    return (
        f"listen: 127.0.0.1:{port}\n"
        f"log: {{level: {level}, format: {fmt}}}\n"
        f"webhook: {{path: {WEBHOOK_PATH}{window}}}\n"
        f"targets:\n  - name: {EMITTER}\n"
    )


@dataclass
class Server:
    label: str
    command: list[str]
    port: int
    stdout_path: Path | None  # None: stdout goes to /dev/null
    stderr_path: Path
    check_accepted: bool
    cwd: Path = REPO_ROOT  # a baseline runs from its own checkout
    path: str = WEBHOOK_PATH  # another exporter may take its events elsewhere
    health_path: str = "/-/healthy"
    env: dict[str, str] | None = None  # None: this process's environment
    # A receiver of another project is measured as it answers: its non-2xx replies are
    # counted (Sample.errors) instead of aborting the run, and its reply bodies are not JSON.
    count_errors: bool = False
    proc: subprocess.Popen[bytes] | None = None
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def start(self) -> None:
        stdout: IO[bytes] | int = subprocess.DEVNULL
        if self.stdout_path is not None:
            stdout = self.stdout_path.open("wb")
            self._files.append(stdout)
        stderr = self.stderr_path.open("wb")
        self._files.append(stderr)
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.base_url + self.health_path, timeout=1.0) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise BenchError(
            f"{self.label} did not answer {self.health_path} within {timeout:g}s{self.tail()}"
        )

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"{self.label} is not running (exit code {code}){self.tail()}")

    def cpu_seconds(self) -> float | None:
        """user+system CPU time of the server process (Linux /proc), None when unavailable."""
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def tail(self, size: int = 2000) -> str:
        out = []
        for path in (self.stdout_path, self.stderr_path):
            if path is not None and path.exists():
                text = path.read_bytes()[-size:].decode(errors="replace").strip()
                if text:
                    out.append(f"\n--- {path.name} (tail) ---\n{text}")
        return "".join(out)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        for handle in self._files:
            handle.close()
        self._files.clear()


def baseline_checkout(tmp: Path, rev: str) -> tuple[Path, str]:
    """A detached worktree of ``rev`` (its own monitor/ package), and its short commit."""
    where = tmp / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q", str(where), rev],
        check=True,
    )
    commit = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return where, commit


def remove_checkout(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(where)], check=False
    )


def baseline_server(tmp: Path, where: Path, commit: str, taken: set[int]) -> Server:
    """The daemon of another commit, at log level warning like ``janus-monitor``; run from its
    checkout so ``python -m monitor`` imports that commit's code."""
    port = free_port()
    while port in taken:
        port = free_port()
    config = tmp / "baseline.yaml"
    guard = "duplicate_window" in (where / "monitor" / "config" / "model.py").read_text()
    config.write_text(daemon_config(port, "warning", "json", guard))
    return Server(
        f"janus-monitor @{commit}",
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        port,
        tmp / "baseline.out",
        tmp / "baseline.err",
        check_accepted=True,
        cwd=where,
    )


def bare_server(tmp: Path) -> Server:
    """The reference: aiohttp + orjson and nothing else (``bench.bare_receiver``)."""
    port = free_port()
    return Server(
        "bare aiohttp+orjson",
        [sys.executable, "-m", "bench.bare_receiver", "--port", str(port), "--path", WEBHOOK_PATH],
        port,
        tmp / "bare.out",
        tmp / "bare.err",
        check_accepted=False,
    )


def make_servers(tmp: Path) -> tuple[Server, Server, Server]:
    python = sys.executable
    bare = bare_server(tmp)
    bare_port = bare.port
    servers: list[Server] = []
    for name, level, fmt, keep_stdout in (
        ("daemon", "warning", "json", True),
        ("daemon-info", "info", "json", False),
    ):
        port = free_port()
        while port == bare_port or any(s.port == port for s in servers):
            port = free_port()
        config = tmp / f"{name}.yaml"
        config.write_text(daemon_config(port, level, fmt))
        servers.append(
            Server(
                "janus-monitor" if level == "warning" else "janus-monitor, log info",
                [python, "-m", "monitor", "run", "--config", str(config)],
                port,
                tmp / f"{name}.out" if keep_stdout else None,
                tmp / f"{name}.err",
                check_accepted=True,
            )
        )
    return bare, servers[0], servers[1]


def daemon_server(
    tmp: Path, name: str, extra: str = "", *, guard: bool = False, check_accepted: bool = False
) -> Server:
    """A daemon at log level warning, by default with the production duplicate window;
    ``extra`` is YAML appended to its config."""
    port = free_port()
    config = tmp / f"{name}.yml"
    config.write_text(daemon_config(port, "warning", "json", guard) + extra)
    command = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
    return Server(name, command, port, None, tmp / f"{name}.err", check_accepted=check_accepted)


def against_daemon(
    name: str, run: Callable[[Server], Coroutine[Any, Any, T]], *, bare: bool = False
) -> T:
    """``run`` against a daemon of its own (``daemon_server``), or with ``bare`` against the
    bare receiver, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        server = bare_server(Path(tmp)) if bare else daemon_server(Path(tmp), name)
        server.start()
        try:
            server.wait_ready()
            return asyncio.run(run(server))
        finally:
            server.stop()
