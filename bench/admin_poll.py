"""``python -m bench.admin_poll``: what the daemon's Admin API polling costs Janus's clients.

Janus runs every Admin request (except message_plugin) and every client ``create`` /
``attach`` / ``destroy`` on one request thread (janus-protocol.md §3.7), so polling shows up
as client signalling latency. One run, against a real Janus 1.1.2 (Debian package, started by
``lab.janus`` on free ports with ``session_timeout = 0`` so idle sessions never expire, no
event handler, debug_level 2):

1. populate: 2 000 sessions x 5 VideoRoom handles (no media, no join) created through the
   Janus HTTP API by a few concurrent aiohttp clients;
2. client latency without the daemon: ``bench/signalling_client.py`` in its own process runs
   create -> attach videoroom -> destroy cycles at a steady rate and times every request;
3. the daemon (``python -m monitor run --config``, log level warning, one target with
   admin_url / admin_secret and the default poll_interval 5s, poll_budget 5%,
   reconcile_interval 30s) learns everything from the Admin API alone: the time until
   ``/api/v1/servers`` shows every session and handle (a full reconcile) and until
   ``handles_unexplained`` is 0, with client latency measured during that discovery;
4. client latency with the daemon polling in steady state (after discovery), with the
   daemon's Admin requests/s by verb, ``janus_monitor_poll_budget_used_ratio`` and the budget
   computed from ``janus_monitor_admin_request_duration_seconds_sum`` over wall time;
5. client latency without the daemon again (the daemon stopped), so drift shows;
6. for contrast, unpaced full sweeps from this process (list_sessions, list_handles per
   session, a full handle_info per handle, one request at a time, as the existing Go exporter
   does), repeated back to back while client latency is measured.

Janus's request thread is found as the ``janus`` thread that used the most CPU while the
handles were created; its CPU time per phase is shown as a share of wall time.

Targets: client p99 (create and attach requests) with the daemon polling in steady state at
most 1.2 x the p99 without it (both no-daemon windows pooled), and a full reconcile of the
10 000 handles within 30 s of the daemon's start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from bench.ingest import percentile
from lab.janus import (
    JanusLabConfig,
    JanusProcess,
    file_tail,
    free_ports,
    janus_binary,
    write_janus_config,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_NAME = "janus-bench"
VIDEOROOM = "janus.plugin.videoroom"
START_TIMEOUT = 20.0
WATCH_PERIOD = 0.5  # seconds between /api/v1/servers reads while the daemon discovers
PROGRESS_PERIOD = 10.0
POLL_INTERVAL, POLL_BUDGET, RECONCILE_INTERVAL = 5.0, 0.05, 30.0
TARGET_P99_RATIO = 1.2
TARGET_RECONCILE_SECONDS = 30.0
CLIENT_KINDS = ("create", "attach")  # the figure: create and attach round trips together


class BenchError(Exception):
    """The benchmark cannot give a meaningful number (a process died, a request failed...)."""


Say = Callable[[str], None]


# --- process accounting ------------------------------------------------------------------------


def _cpu_ticks(stat_path: str) -> int | None:
    try:
        with open(stat_path) as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime


def cpu_seconds(pid: int, tid: int | None = None) -> float | None:
    """user+system CPU of a process (or one of its threads), from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    ticks = _cpu_ticks(path)
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds) for every thread of pid."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for entry in tids:
        tid = int(entry)
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
        except OSError:
            continue
        seconds = cpu_seconds(pid, tid)
        if seconds is not None:
            out[tid] = (name, seconds)
    return out


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class CpuMeter:
    """CPU seconds of Janus, its request thread and the daemon over one phase."""

    janus_pid: int
    request_tid: int | None
    daemon_pid: int | None = None
    started: float = 0.0
    before: tuple[float | None, float | None, float | None] = (None, None, None)

    def _read(self) -> tuple[float | None, float | None, float | None]:
        thread = None if self.request_tid is None else cpu_seconds(self.janus_pid, self.request_tid)
        daemon = None if self.daemon_pid is None else cpu_seconds(self.daemon_pid)
        return cpu_seconds(self.janus_pid), thread, daemon

    def start(self) -> CpuMeter:
        self.started = time.monotonic()
        self.before = self._read()
        return self

    def shares(self) -> tuple[float | None, float | None, float | None]:
        """(Janus, request thread, daemon) CPU seconds per wall second since start()."""
        wall = max(time.monotonic() - self.started, 1e-9)
        after = self._read()
        return tuple(  # type: ignore[return-value]
            None if a is None or b is None else (a - b) / wall
            for a, b in zip(after, self.before, strict=True)
        )


# --- the Janus API and the Admin API, from this process ----------------------------------------


def _transaction() -> str:
    return secrets.token_hex(6)


async def janus_post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    body["transaction"] = _transaction()
    async with http.post(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    ) as response:
        raw = await response.read()
    reply = orjson.loads(raw)
    if not isinstance(reply, dict):
        raise BenchError(f"{url}: not a JSON object: {raw[:200]!r}")
    return reply


def _success_id(reply: dict[str, Any], what: str) -> int:
    if reply.get("janus") != "success":
        raise BenchError(f"{what} failed: {orjson.dumps(reply)[:300]!r}")
    return int(reply["data"]["id"])


async def populate(
    api_url: str, sessions: int, per_session: int, workers: int
) -> tuple[float, list[int]]:
    """Create sessions x per_session VideoRoom handles; (seconds, session ids)."""
    created: list[int] = []
    todo = iter(range(sessions))

    async def worker() -> None:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            for _ in todo:
                session_id = _success_id(
                    await janus_post(http, api_url, {"janus": "create"}), "create"
                )
                created.append(session_id)
                for _ in range(per_session):
                    _success_id(
                        await janus_post(
                            http,
                            f"{api_url}/{session_id}",
                            {"janus": "attach", "plugin": VIDEOROOM},
                        ),
                        "attach",
                    )

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.monotonic() - started, created


class Admin:
    """Bare Admin API requests (body ids, as the daemon sends them); counts what it sent."""

    def __init__(self, http: aiohttp.ClientSession, url: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.sent: dict[str, int] = {}
        self.errors = 0

    async def request(self, verb: str, **fields: Any) -> dict[str, Any]:
        body = {"janus": verb, "admin_secret": self.secret, **fields}
        self.sent[verb] = self.sent.get(verb, 0) + 1
        return await janus_post(self.http, self.url, body)

    async def list_sessions(self) -> list[int]:
        reply = await self.request("list_sessions")
        ids = reply.get("sessions")
        if not isinstance(ids, list):
            raise BenchError(f"list_sessions: {orjson.dumps(reply)[:300]!r}")
        return [int(i) for i in ids]

    async def list_handles(self, session_id: int) -> list[int]:
        reply = await self.request("list_handles", session_id=session_id)
        ids = reply.get("handles")
        if not isinstance(ids, list):
            self.errors += 1  # a client's short-lived session, gone since list_sessions
            return []
        return [int(i) for i in ids]

    async def handle_info(self, session_id: int, handle_id: int) -> None:
        reply = await self.request("handle_info", session_id=session_id, handle_id=handle_id)
        if reply.get("janus") != "success":
            self.errors += 1


@dataclass(frozen=True)
class Sweep:
    seconds: float
    requests: int
    handles: int


async def full_sweep(admin: Admin) -> Sweep:
    """Everything, unpaced, one request at a time: what the Go exporter does each scrape."""
    started = time.monotonic()
    requests = 1
    handles = 0
    for session_id in await admin.list_sessions():
        handle_ids = await admin.list_handles(session_id)
        requests += 1
        for handle_id in handle_ids:
            await admin.handle_info(session_id, handle_id)
            requests += 1
            handles += 1
    return Sweep(time.monotonic() - started, requests, handles)


# --- the client process ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRun:
    label: str
    latencies_us: dict[str, list[int]]
    errors: dict[str, int]
    cycles: int
    window: float
    max_late_ms: float
    started: float  # monotonic, when the recorded window began (about)
    janus_cpu: float | None = None
    thread_cpu: float | None = None
    daemon_cpu: float | None = None
    admin_per_s: float | None = None
    note: str = ""

    def values(self, kinds: Sequence[str] = CLIENT_KINDS) -> list[int]:
        return sorted(v for kind in kinds for v in self.latencies_us.get(kind, ()))


async def run_client(
    api_url: str, seconds: float, rate: float, label: str, warmup: float = 1.0
) -> ClientRun:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.signalling_client",
        "--url",
        api_url,
        "--seconds",
        str(seconds),
        "--rate",
        str(rate),
        "--warmup",
        str(warmup),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(
            f"signalling client exited with {proc.returncode}: "
            f"{err.decode(errors='replace')[-2000:]}"
        )
    result = orjson.loads(out)
    return ClientRun(
        label=label,
        latencies_us={k: list(v) for k, v in result["latencies_us"].items()},
        errors=dict(result["errors"]),
        cycles=int(result["cycles"]),
        window=float(result["window_seconds"]),
        max_late_ms=float(result["max_late_ms"]),
        started=started,
    )


# --- the daemon ------------------------------------------------------------------------------


def daemon_config(port: int, admin_url: str, secret: str) -> str:
    return (
        f"listen: 127.0.0.1:{port}\n"
        "log: {level: warning, format: json}\n"
        "targets:\n"
        f"  - name: {SERVER_NAME}\n"
        f"    admin_url: {admin_url}\n"
        f"    admin_secret: {secret}\n"
        f"    poll_interval: {POLL_INTERVAL:g}s\n"
        f"    poll_budget: {POLL_BUDGET:.0%}\n"
        f"    reconcile_interval: {RECONCILE_INTERVAL:g}s\n"
    )


@dataclass
class Daemon:
    config: Path
    port: int
    out_path: Path
    err_path: Path
    proc: subprocess.Popen[bytes] | None = None
    spawned: float = 0.0
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out, err = self.out_path.open("wb"), self.err_path.open("wb")
        self._files += [out, err]
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"the daemon is not running (exit code {code}){self.tail()}")

    def tail(self) -> str:
        out = []
        for path in (self.out_path, self.err_path):
            text = file_tail(path, 20) if path.exists() else ""
            if text and not text.startswith("("):
                out.append(f"\n--- {path.name} (tail) ---\n{text}")
        return "".join(out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for handle in self._files:
            handle.close()
        self._files.clear()


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Metrics:
    """One /metrics scrape: name -> [(labels, value)]."""

    taken: float
    samples: dict[str, list[tuple[dict[str, str], float]]]

    @classmethod
    def parse(cls, text: str, taken: float) -> Metrics:
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels, value = match.groups()
            parsed = dict(_LABEL.findall(labels or ""))
            samples.setdefault(name, []).append((parsed, float(value)))
        return cls(taken, samples)

    def value(self, name: str, **labels: str) -> float:
        return sum(
            value
            for found, value in self.samples.get(name, ())
            if all(found.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for found, value in self.samples.get(name, ()):
            key = found.get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out


async def scrape(http: aiohttp.ClientSession, daemon: Daemon) -> Metrics:
    async with http.get(daemon.base_url + "/metrics") as response:
        text = await response.text()
    return Metrics.parse(text, time.monotonic())


async def servers(http: aiohttp.ClientSession, daemon: Daemon) -> dict[str, Any]:
    async with http.get(daemon.base_url + "/api/v1/servers", params={"server": SERVER_NAME}) as r:
        body = await r.json()
    found: list[dict[str, Any]] = body.get("servers", [])
    return found[0] if found else {}


async def wait_healthy(http: aiohttp.ClientSession, daemon: Daemon) -> float:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        daemon.check_alive()
        try:
            async with http.get(daemon.base_url + "/-/healthy") as response:
                if response.status == 200:
                    return time.monotonic() - daemon.spawned
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.05)
    raise BenchError(f"the daemon did not answer /-/healthy within {START_TIMEOUT:g}s")


@dataclass(frozen=True)
class Window:
    """The daemon's Admin requests between two scrapes."""

    seconds: float
    by_verb: dict[str, float]
    errors: dict[str, float]
    count: float
    busy: float  # sum of request durations
    budget_gauge: float  # janus_monitor_poll_budget_used_ratio at the end
    reconcile_age: float  # janus_monitor_reconcile_age_seconds at the end

    @classmethod
    def between(cls, a: Metrics, b: Metrics) -> Window:
        requests = "janus_monitor_admin_requests_total"
        before, after = a.by_label(requests, "request"), b.by_label(requests, "request")
        errors = "janus_monitor_poll_errors_total"
        e_before = a.by_label(errors, "request")
        e_after = b.by_label(errors, "request")
        duration = "janus_monitor_admin_request_duration_seconds"
        return cls(
            seconds=b.taken - a.taken,
            by_verb={k: v - before.get(k, 0.0) for k, v in after.items()},
            errors={
                k: v - e_before.get(k, 0.0) for k, v in e_after.items() if v > e_before.get(k, 0.0)
            },
            count=b.value(duration + "_count") - a.value(duration + "_count"),
            busy=b.value(duration + "_sum") - a.value(duration + "_sum"),
            budget_gauge=b.value("janus_monitor_poll_budget_used_ratio"),
            reconcile_age=b.value("janus_monitor_reconcile_age_seconds"),
        )

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def budget(self) -> float:
        return self.busy / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_ms(self) -> float:
        return self.busy / self.count * 1000 if self.count else float("nan")

    def mix(self) -> str:
        parts = [
            f"{verb} {count / self.seconds:.1f}/s"
            for verb, count in sorted(self.by_verb.items(), key=lambda kv: -kv[1])
            if count
        ]
        return ", ".join(parts) or "none"


@dataclass
class Discovery:
    """What the watcher saw while the daemon learned the server from the Admin API."""

    listed_at: float | None = None  # seconds after spawn: every session and handle listed
    explained_at: float | None = None  # ... and every handle explained
    reconcile_age_at_listed: float | None = None
    timeline: list[tuple[float, int, int, int]] = field(default_factory=list)
    peak_handles: int = 0


async def watch_discovery(
    http: aiohttp.ClientSession,
    daemon: Daemon,
    sessions: int,
    handles: int,
    give_up_after: float,
    say: Say,
) -> Discovery:
    found = Discovery()
    next_progress = PROGRESS_PERIOD
    while True:
        daemon.check_alive()
        now = time.monotonic() - daemon.spawned
        try:
            view = await servers(http, daemon)
        except (aiohttp.ClientError, OSError, ValueError):
            view = {}
        seen_sessions = int(view.get("sessions") or 0)
        seen_handles = int(view.get("handles") or 0)
        unexplained = int(view.get("handles_unexplained") or 0)
        found.timeline.append((now, seen_sessions, seen_handles, unexplained))
        found.peak_handles = max(found.peak_handles, seen_handles)
        if found.listed_at is None and seen_sessions >= sessions and seen_handles >= handles:
            found.listed_at = now
            metrics = await scrape(http, daemon)
            found.reconcile_age_at_listed = metrics.value("janus_monitor_reconcile_age_seconds")
            say(
                f"  t={now:6.1f}s  every session and handle listed ({seen_sessions} sessions, "
                f"{seen_handles} handles; reconcile age {found.reconcile_age_at_listed:.1f}s)"
            )
        if found.listed_at is not None and seen_handles >= handles and unexplained == 0:
            found.explained_at = now
            say(f"  t={now:6.1f}s  every handle explained (handles_unexplained 0)")
            return found
        if now >= next_progress:
            metrics = await scrape(http, daemon)
            requests = metrics.by_label("janus_monitor_admin_requests_total", "request")
            mix = ", ".join(f"{k} {v:.0f}" for k, v in sorted(requests.items()))
            say(
                f"  t={now:6.1f}s  sessions {seen_sessions}, handles {seen_handles}, "
                f"unexplained {unexplained}; requests so far: {mix}"
            )
            next_progress += PROGRESS_PERIOD
        if now >= give_up_after:
            say(f"  t={now:6.1f}s  gave up waiting (--discovery-timeout {give_up_after:g}s)")
            return found
        await asyncio.sleep(WATCH_PERIOD)


# --- report -------------------------------------------------------------------------------


def _ms(values: Sequence[int], share: float) -> float:
    return percentile(values, share) / 1000 if values else float("nan")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def client_table(runs: Sequence[ClientRun]) -> list[str]:
    header = (
        "client latency (ms)",
        "cycles/s",
        "create p50",
        "p99",
        "attach p50",
        "p99",
        "c+a p50",
        "c+a p99",
        "c+a max",
        "err",
        "Janus CPU",
        "req thread",
        "daemon CPU",
        "admin req/s",
    )
    lines: list[tuple[str, ...]] = [header]
    for run in runs:
        create, attach, both = run.values(("create",)), run.values(("attach",)), run.values()
        lines.append(
            (
                run.label,
                f"{run.cycles / run.window:.0f}" if run.window else "-",
                f"{_ms(create, 0.5):.3f}",
                f"{_ms(create, 0.99):.3f}",
                f"{_ms(attach, 0.5):.3f}",
                f"{_ms(attach, 0.99):.3f}",
                f"{_ms(both, 0.5):.3f}",
                f"{_ms(both, 0.99):.3f}",
                f"{both[-1] / 1000:.1f}" if both else "-",
                str(sum(run.errors.values())),
                _pct(run.janus_cpu),
                _pct(run.thread_cpu),
                _pct(run.daemon_cpu),
                "-" if run.admin_per_s is None else f"{run.admin_per_s:,.0f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    ]


def pooled(runs: Sequence[ClientRun], label: str) -> ClientRun:
    latencies: dict[str, list[int]] = {}
    for run in runs:
        for kind, values in run.latencies_us.items():
            latencies.setdefault(kind, []).extend(values)
    errors: dict[str, int] = {}
    for run in runs:
        for key, count in run.errors.items():
            errors[key] = errors.get(key, 0) + count

    def mean(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.fmean(present) if present else None

    return ClientRun(
        label=label,
        latencies_us=latencies,
        errors=errors,
        cycles=sum(r.cycles for r in runs),
        window=sum(r.window for r in runs),
        max_late_ms=max(r.max_late_ms for r in runs),
        started=runs[0].started,
        janus_cpu=mean([r.janus_cpu for r in runs]),
        thread_cpu=mean([r.thread_cpu for r in runs]),
        daemon_cpu=mean([r.daemon_cpu for r in runs]),
    )


# --- main ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.admin_poll",
        description="Client signalling latency of a real Janus with and without the daemon's "
        "Admin API polling, and how long the daemon takes to learn 10 000 handles.",
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="each client latency window (default 20)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="client cycles/s, each a create, an attach and a destroy (default 100: "
        "200 create/attach round trips/s)",
    )
    parser.add_argument("--sessions", type=int, default=2000, help="sessions to create")
    parser.add_argument("--handles-per-session", type=int, default=5, help="VideoRoom handles each")
    parser.add_argument("--creators", type=int, default=4, help="concurrent creating clients")
    parser.add_argument(
        "--discovery-timeout",
        type=float,
        default=180.0,
        help="give up waiting for every handle to be explained after this many seconds",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    return parser


@dataclass
class Results:
    populate_seconds: float = 0.0
    janus_rss_mb: float | None = None
    request_tid: int | None = None
    healthy_after: float = 0.0
    discovery: Discovery = field(default_factory=Discovery)
    discovery_window: Window | None = None
    steady_window: Window | None = None
    runs: list[ClientRun] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    sweep_errors: int = 0
    discovery_overlap: float | None = None  # share of the discovery window before explained
    dropped: dict[str, float] = field(default_factory=dict)


async def _run(
    args: argparse.Namespace,
    janus: JanusProcess,
    cfg: JanusLabConfig,
    daemon: Daemon,
    say: Say,
) -> Results:
    res = Results()
    janus_pid = janus.pid
    if janus_pid is None:
        raise BenchError("Janus is not running")
    total_handles = args.sessions * args.handles_per_session

    # 1. populate, and find the request thread: the busiest "janus" thread meanwhile
    before = thread_cpu(janus_pid)
    res.populate_seconds, _ = await populate(
        cfg.janus_url, args.sessions, args.handles_per_session, args.creators
    )
    after = thread_cpu(janus_pid)
    deltas = {
        tid: seconds - before.get(tid, (name, 0.0))[1]
        for tid, (name, seconds) in after.items()
        if name == "janus" and tid != janus_pid
    }
    res.request_tid = max(deltas, key=lambda t: deltas[t]) if deltas else None
    res.janus_rss_mb = rss_mb(janus_pid)
    requests = args.sessions * (1 + args.handles_per_session)
    say(
        f"populated {args.sessions} sessions x {args.handles_per_session} VideoRoom handles "
        f"({requests} requests, {args.creators} clients) in {res.populate_seconds:.1f} s "
        f"= {requests / res.populate_seconds:,.0f} requests/s; Janus RSS "
        f"{res.janus_rss_mb or 0:.0f} MB; request thread tid {res.request_tid}"
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        admin = Admin(http, cfg.admin_url, cfg.admin_secret)
        listed = await admin.list_sessions()
        if len(listed) != args.sessions:
            raise BenchError(f"list_sessions shows {len(listed)} sessions, not {args.sessions}")

        async def measured(label: str, daemon_pid: int | None = None) -> ClientRun:
            meter = CpuMeter(janus_pid, res.request_tid, daemon_pid).start()
            run = await run_client(cfg.janus_url, args.seconds, args.rate, label)
            janus_cpu, thread, daemon_cpu = meter.shares()
            run = _with_cpu(run, janus_cpu, thread, daemon_cpu)
            _say_run(say, run)
            return run

        # 2. no daemon
        res.runs.append(await measured("no daemon (before)"))

        # 3. the daemon discovers
        daemon.start()
        assert daemon.proc is not None
        res.healthy_after = await wait_healthy(http, daemon)
        say(
            f"daemon started (answering after {res.healthy_after:.2f} s); client latency "
            f"window during discovery starts now"
        )
        start_metrics = await scrape(http, daemon)
        meter = CpuMeter(janus_pid, res.request_tid, daemon.proc.pid).start()
        client = asyncio.create_task(
            run_client(cfg.janus_url, args.seconds, args.rate, "daemon, discovery")
        )
        discovery = asyncio.create_task(
            watch_discovery(http, daemon, args.sessions, total_handles, args.discovery_timeout, say)
        )
        run = await client
        janus_cpu, thread, daemon_cpu = meter.shares()
        window_metrics = await scrape(http, daemon)
        discovery_share = Window.between(start_metrics, window_metrics)
        run = _with_cpu(run, janus_cpu, thread, daemon_cpu, discovery_share.per_s)
        res.discovery = await discovery
        window_end = window_metrics.taken - daemon.spawned
        window_start = window_end - run.window
        explained = res.discovery.explained_at
        if explained is not None and explained < window_end:
            res.discovery_overlap = max(0.0, (explained - window_start) / run.window)
            run = _noted(run, f"discovery over at {res.discovery_overlap:.0%} of the window")
        res.runs.append(run)
        _say_run(say, run)
        end_metrics = await scrape(http, daemon)
        res.discovery_window = Window.between(start_metrics, end_metrics)

        # 4. steady state: one poll interval after discovery, then the main figure
        await asyncio.sleep(POLL_INTERVAL)
        daemon.check_alive()
        steady_start = await scrape(http, daemon)
        run = await measured("daemon, steady state", daemon.proc.pid)
        steady_end = await scrape(http, daemon)
        res.steady_window = Window.between(steady_start, steady_end)
        res.runs.append(_with_admin_rate(run, res.steady_window.per_s))
        res.dropped = steady_end.by_label("janus_monitor_state_dropped_total", "reason")
        view = await servers(http, daemon)
        say(
            f"daemon after steady state: {view.get('sessions')} sessions, {view.get('handles')} "
            f"handles, {view.get('handles_unexplained')} unexplained, reconcile age "
            f"{res.steady_window.reconcile_age:.1f} s"
        )
        daemon.check_alive()
        daemon.stop()

        # 5. no daemon again
        res.runs.append(await measured("no daemon (after)"))

        # 6. unpaced full sweeps while the client measures
        sweep_admin = Admin(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
            ),
            cfg.admin_url,
            cfg.admin_secret,
        )
        try:
            meter = CpuMeter(janus_pid, res.request_tid).start()
            client = asyncio.create_task(
                run_client(cfg.janus_url, args.seconds, args.rate, "unpaced full sweeps")
            )
            sweep_started = time.monotonic()
            while not client.done():
                res.sweeps.append(await full_sweep(sweep_admin))
            sweep_seconds = time.monotonic() - sweep_started
            run = await client
            janus_cpu, thread, _ = meter.shares()
            sent = sum(s.requests for s in res.sweeps)
            res.runs.append(_with_cpu(run, janus_cpu, thread, None, sent / sweep_seconds))
            res.sweep_errors = sweep_admin.errors
            _say_run(say, res.runs[-1])
        finally:
            await sweep_admin.http.close()
    return res


def _with_cpu(
    run: ClientRun,
    janus_cpu: float | None,
    thread: float | None,
    daemon_cpu: float | None,
    admin_per_s: float | None = None,
) -> ClientRun:
    return dataclasses.replace(
        run, janus_cpu=janus_cpu, thread_cpu=thread, daemon_cpu=daemon_cpu, admin_per_s=admin_per_s
    )


def _noted(run: ClientRun, note: str) -> ClientRun:
    return dataclasses.replace(run, note=note)


def _with_admin_rate(run: ClientRun, admin_per_s: float) -> ClientRun:
    return dataclasses.replace(run, admin_per_s=admin_per_s)


def _say_run(say: Say, run: ClientRun) -> None:
    both = run.values()
    extra = f"; {run.note}" if run.note else ""
    errors = f"; errors {run.errors}" if run.errors else ""
    say(
        f"  {run.label:<22} create+attach p50 {_ms(both, 0.5):.3f} ms  p99 "
        f"{_ms(both, 0.99):.3f} ms  ({len(both)} requests in {run.window:.1f} s, loop late "
        f"<= {run.max_late_ms:.1f} ms{errors}{extra})"
    )


def report(args: argparse.Namespace, res: Results, say: Say) -> None:
    total_handles = args.sessions * args.handles_per_session
    by_label = {run.label: run for run in res.runs}
    without = pooled(
        [by_label["no daemon (before)"], by_label["no daemon (after)"]], "no daemon (pooled)"
    )
    rows = [by_label["no daemon (before)"], by_label["no daemon (after)"], without]
    rows += [by_label["daemon, discovery"], by_label["daemon, steady state"]]
    rows.append(by_label["unpaced full sweeps"])
    say("")
    for line in client_table(rows):
        say(line)
    say(
        "(create/attach/c+a: per request round trip from a separate process; Janus CPU, req "
        "thread, daemon CPU: CPU seconds per wall second; admin req/s: the daemon's, or the "
        "sweeps')"
    )
    say("")

    d = res.discovery
    say("daemon discovery (seconds after the daemon was spawned):")
    say(
        f"  every session and handle listed: {_secs(d.listed_at)}"
        f" (reconcile age then {_secs(d.reconcile_age_at_listed)})"
    )
    say(f"  every handle explained:          {_secs(d.explained_at)}")
    for name, window in (("discovery", res.discovery_window), ("steady", res.steady_window)):
        if window is None:
            continue
        say(
            f"  {name:<9} window {window.seconds:5.1f} s: {window.per_s:6.1f} Admin requests/s, "
            f"mean {window.mean_ms:.3f} ms, budget used {window.budget:.2%} (duration_sum / "
            f"wall), gauge {window.budget_gauge:.2%}, reconcile age {window.reconcile_age:.1f} s"
        )
        say(f"            mix: {window.mix()}")
        if window.errors:
            say(f"            errors: {window.errors}")
    if res.dropped:
        say(f"  state dropped (cumulative): {res.dropped}")
    if res.sweeps:
        seconds = [s.seconds for s in res.sweeps]
        req = [s.requests for s in res.sweeps]
        say(
            f"unpaced full sweep: {len(res.sweeps)} sweeps of {statistics.median(req):,.0f} "
            f"requests ({res.sweeps[0].handles} handle_info), median "
            f"{statistics.median(seconds):.2f} s = "
            f"{statistics.median(req) / statistics.median(seconds):,.0f} requests/s "
            f"(list_handles of vanished client sessions: {res.sweep_errors})"
        )
    say("")
    steady = by_label["daemon, steady state"]
    base_p99 = _ms(without.values(), 0.99)
    ratio = _ms(steady.values(), 0.99) / base_p99
    say(
        f"client p99 with daemon polling <= {TARGET_P99_RATIO} x without: {ratio:.2f} "
        f"{'OK' if ratio <= TARGET_P99_RATIO else 'NOT MET'}"
    )
    listed = d.listed_at
    ok = listed is not None and listed <= TARGET_RECONCILE_SECONDS
    shown = f"{listed:.1f}" if listed is not None else f"not reached in {args.discovery_timeout:g}"
    say(
        f"full reconcile of {total_handles} handles <= {TARGET_RECONCILE_SECONDS:g} s: {shown} "
        f"{'OK' if ok else 'NOT MET'}"
    )


def _secs(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.sessions < 1 or args.handles_per_session < 1:
        print(
            "--seconds, --rate, --sessions and --handles-per-session must be > 0", file=sys.stderr
        )
        return 2

    def say(text: str = "") -> None:
        print(text, flush=True)

    try:
        binary = janus_binary()
    except RuntimeError as exc:
        print(f"bench.admin_poll: {exc}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="janus-monitor-bench-admin-"))
    failed = False
    http_port, admin_port, ws_port, daemon_port = free_ports(4)
    cfg = JanusLabConfig(
        server_name=SERVER_NAME,
        admin_secret=secrets.token_hex(12),
        http_port=http_port,
        admin_port=admin_port,
        ws_port=ws_port,
        session_timeout=0,
        debug_level=2,
    )
    config = tmp / "daemon.yaml"
    config.write_text(daemon_config(daemon_port, cfg.admin_url, cfg.admin_secret))
    daemon = Daemon(config, daemon_port, tmp / "daemon.out", tmp / "daemon.err")
    janus = JanusProcess(cfg, binary=binary)
    started = time.monotonic()
    try:
        write_janus_config(tmp / "conf", cfg)
        with janus.start(tmp / "conf", tmp / "janus.log"):
            version = (janus.info or {}).get("version_string", "?")
            say(
                f"janus-monitor Admin polling benchmark: Janus {version} ({binary}), "
                f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
                f"{os.cpu_count()} CPUs"
            )
            say(
                f"  {args.sessions} sessions x {args.handles_per_session} VideoRoom handles, "
                f"session_timeout 0, no event handler; client {args.rate:g} create+attach+destroy "
                f"cycles/s for {args.seconds:g} s per window (own process); daemon poll_interval "
                f"{POLL_INTERVAL:g}s, poll_budget {POLL_BUDGET:.0%}, reconcile_interval "
                f"{RECONCILE_INTERVAL:g}s, log level warning"
            )
            say("")
            try:
                res = asyncio.run(_run(args, janus, cfg, daemon, say))
            finally:
                daemon.stop()
            if not janus.running:
                raise BenchError(f"Janus died during the run:\n{janus.log_tail()}")
    except (BenchError, RuntimeError, aiohttp.ClientError, OSError) as exc:
        print(f"bench.admin_poll: {exc}", file=sys.stderr)
        failed = True
        return 1
    finally:
        if args.keep or failed:
            print(f"(temp dir kept: {tmp})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, res, say)
    say(f"(total run time {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
