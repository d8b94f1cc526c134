"""``python -m bench.admin_poll``: what the daemon's Admin API polling costs Janus's clients.

Janus runs every Admin request (except message_plugin) and every client ``create`` /
``attach`` / ``destroy`` on one request thread (janus-protocol.md §3.7), so polling shows up
as client signalling latency. One run, against a real Janus 1.1.2 (Debian package, started by
``lab.janus`` on free ports with ``session_timeout = 0`` so idle sessions never expire, no
event handler, debug_level 2):

1. populate: 2 000 sessions x 5 VideoRoom handles (no media, no join) created through the
   Janus HTTP API by a few concurrent aiohttp clients;
2. client latency without the daemon: ``bench/signalling_client.py``, in its own process, runs
   create -> attach videoroom -> destroy cycles at a steady open-loop rate and times every
   request; the figure is the create and attach round trips together;
3. the daemon (``python -m monitor run --config``, log level warning, one target with
   admin_url / admin_secret and the default poll_interval 5s, poll_budget 5%,
   reconcile_interval 30s) must learn everything from the Admin API: the time until
   ``/api/v1/servers`` shows every session and handle (a full reconcile) and until its
   ``handles_unexplained`` is 0 (or ``--discovery-timeout``), with client latency measured
   from the daemon's start (while it lists handles) and again from when every handle is
   listed (while it explains them with handle_info);
4. client latency with the daemon polling in steady state, one poll interval after discovery
   ended (labelled "not settled" when it never ended), with the daemon's Admin requests/s by
   verb from ``janus_monitor_admin_requests_total``, ``janus_monitor_poll_budget_used_ratio``
   and the budget computed from ``janus_monitor_admin_request_duration_seconds_sum`` over wall
   time;
5. client latency without the daemon again (daemon stopped), so drift between the two
   no-daemon windows shows; they are pooled for the comparison;
6. for contrast, unpaced full sweeps from this process (list_sessions, list_handles per
   session, a full handle_info per handle, one request at a time, as the existing Go exporter
   does), back to back while the client measures.

CPU shares (CPU seconds per wall second, from /proc) per window: the whole Janus process, its
request thread (the ``janus`` thread busiest while the handles were created), its Admin HTTP
thread (the libmicrohttpd thread that was idle then), the daemon, and the host's busy CPU
used by none of these (other load on the machine makes the latency figures unreliable).

Targets: client p99 with the daemon polling in steady state at most 1.2 x the p99 without it,
and every one of the 10 000 handles listed within 30 s of the daemon's start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import resource
import secrets
import shutil
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
    stop_process,
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
OTHER_CPU_WARNING = 0.05  # CPU seconds per wall second used by processes outside the bench
TARGET_RECONCILE_SECONDS = 30.0
CLIENT_KINDS = ("create", "attach")  # the figure: create and attach round trips together

NO_DAEMON_BEFORE, NO_DAEMON_AFTER = "no daemon (before)", "no daemon (after)"
LISTING, EXPLAINING = "daemon, listing", "daemon, explaining"  # the two discovery windows
STEADY, NOT_SETTLED = "daemon, steady state", "daemon, not settled"  # not settled: discovery
# never finished, so the "steady" window was measured while the daemon still discovered
SWEEPS = "unpaced full sweeps"


class BenchError(Exception):
    """The benchmark cannot give a meaningful number (a process died, a request failed...)."""


Say = Callable[[str], None]


# --- CPU accounting ----------------------------------------------------------------------------


def cpu_seconds(pid: int, tid: int | None = None) -> float | None:
    """user+system CPU time of a process (or one of its threads), from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds) for every thread of pid."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = [int(entry) for entry in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return out
    for tid in tids:
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


@dataclass(frozen=True)
class JanusThreads:
    request: int | None  # the "sessions requests" thread (all Janus threads are named "janus")
    admin_http: int | None  # the libmicrohttpd thread of the Admin port

    @classmethod
    def find(
        cls, pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> JanusThreads:
        """From per-thread CPU before and after Janus API traffic only (no Admin requests)."""

        def used(name: str) -> dict[int, float]:
            return {
                tid: seconds - before.get(tid, (found, 0.0))[1]
                for tid, (found, seconds) in after.items()
                if found == name and tid != pid
            }

        janus, http = used("janus"), used("MHD-single")
        request = max(janus, key=lambda t: janus[t]) if janus else None
        admin = min(http, key=lambda t: http[t]) if len(http) == 2 else None
        return cls(request, admin)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds per wall second over one window."""

    janus: float | None = None
    request_thread: float | None = None
    admin_http: float | None = None
    daemon: float | None = None
    other: float | None = None  # the host's busy CPU not used by this benchmark's processes


def host_busy_seconds() -> float | None:
    """Busy CPU time of the whole host (all CPUs), from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal, no guest


def own_cpu_seconds() -> float:
    """CPU of this process and of its reaped children (the client processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """Open it before a client run and read it after the client process has exited."""

    def __init__(self, janus_pid: int, threads: JanusThreads, daemon_pid: int | None) -> None:
        self.janus_pid = janus_pid
        self.threads = threads
        self.daemon_pid = daemon_pid
        self.started = time.monotonic()
        self.before = self._read()

    def _read(self) -> tuple[float | None, ...]:
        pid = self.janus_pid
        janus = cpu_seconds(pid)
        daemon = None if self.daemon_pid is None else cpu_seconds(self.daemon_pid)
        host = host_busy_seconds()
        other = (
            None
            if host is None or janus is None
            else host - janus - (daemon or 0.0) - own_cpu_seconds()
        )
        return (
            janus,
            None if self.threads.request is None else cpu_seconds(pid, self.threads.request),
            None if self.threads.admin_http is None else cpu_seconds(pid, self.threads.admin_http),
            daemon,
            other,
        )

    def read(self) -> Cpu:
        wall = max(time.monotonic() - self.started, 1e-9)
        shares = [
            None if a is None or b is None else (a - b) / wall
            for a, b in zip(self._read(), self.before, strict=True)
        ]
        return Cpu(*shares)


# --- the Janus API and the Admin API, from this process ----------------------------------------


async def janus_post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    body["transaction"] = secrets.token_hex(6)
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


async def populate(api_url: str, sessions: int, per_session: int, workers: int) -> float:
    """Create sessions x per_session VideoRoom handles with concurrent clients; seconds taken."""
    todo = iter(range(sessions))

    async def worker() -> None:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            for _ in todo:
                reply = await janus_post(http, api_url, {"janus": "create"})
                session_url = f"{api_url}/{_success_id(reply, 'create')}"
                for _ in range(per_session):
                    attach = {"janus": "attach", "plugin": VIDEOROOM}
                    _success_id(await janus_post(http, session_url, attach), "attach")

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.monotonic() - started


class Admin:
    """Bare Admin API requests with the ids in the body, as the daemon sends them."""

    def __init__(self, http: aiohttp.ClientSession, url: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.sent: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.errors = 0

    async def request(self, verb: str, **fields: Any) -> dict[str, Any]:
        body = {"janus": verb, "admin_secret": self.secret, **fields}
        started = time.perf_counter()
        reply = await janus_post(self.http, self.url, body)
        self.seconds[verb] = self.seconds.get(verb, 0.0) + time.perf_counter() - started
        self.sent[verb] = self.sent.get(verb, 0) + 1
        return reply

    def mean_ms(self) -> str:
        return ", ".join(
            f"{verb} {self.seconds[verb] / count * 1000:.3f} ms"
            for verb, count in sorted(self.sent.items())
        )

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
    """Everything, unpaced, one request at a time: what the Go exporter does per scrape."""
    started = time.monotonic()
    requests, handles = 1, 0
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
    cpu: Cpu = Cpu()
    admin_per_s: float | None = None  # the daemon's (or the sweeps') Admin requests/s
    note: str = ""

    def values(self, kinds: Sequence[str] = CLIENT_KINDS) -> list[int]:
        return sorted(v for kind in kinds for v in self.latencies_us.get(kind, ()))


async def run_client(api_url: str, seconds: float, rate: float, label: str) -> ClientRun:
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
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(
            f"signalling client exited with {proc.returncode}: "
            f"{err.decode(errors='replace')[-2000:]}"
        )
    result = orjson.loads(out)
    return ClientRun(
        label=label,
        latencies_us={kind: list(values) for kind, values in result["latencies_us"].items()},
        errors=dict(result["errors"]),
        cycles=int(result["cycles"]),
        window=float(result["window_seconds"]),
        max_late_ms=float(result["max_late_ms"]),
    )


# --- the daemon ------------------------------------------------------------------------------


def daemon_config(port: int, admin_url: str, secret: str, level: str) -> str:
    return (
        f"listen: 127.0.0.1:{port}\n"
        f"log: {{level: {level}, format: json}}\n"
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

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

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
            if path.exists() and path.stat().st_size:
                out.append(f"\n--- {path.name} (tail) ---\n{file_tail(path, 20)}")
        return "".join(out)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
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
            match = _SAMPLE.match(line) if line and not line.startswith("#") else None
            if match is not None:
                name, labels, value = match.groups()
                samples.setdefault(name, []).append(
                    (dict(_LABEL.findall(labels or "")), float(value))
                )
        return cls(taken, samples)

    def value(self, name: str) -> float:
        return sum(value for _, value in self.samples.get(name, ()))

    def by_labels(self, name: str, *labels: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for found, value in self.samples.get(name, ()):
            key = "/".join(found.get(label, "") for label in labels)
            out[key] = out.get(key, 0.0) + value
        return out


async def scrape(http: aiohttp.ClientSession, daemon: Daemon) -> Metrics:
    async with http.get(daemon.base_url + "/metrics") as response:
        text = await response.text()
    return Metrics.parse(text, time.monotonic())


async def server_view(http: aiohttp.ClientSession, daemon: Daemon) -> dict[str, Any]:
    url = daemon.base_url + "/api/v1/servers"
    async with http.get(url, params={"server": SERVER_NAME}) as response:
        body = await response.json()
    found: list[dict[str, Any]] = body.get("servers", [])
    return found[0] if found else {}


async def wait_healthy(http: aiohttp.ClientSession, daemon: Daemon) -> float:
    while time.monotonic() - daemon.spawned < START_TIMEOUT:
        daemon.check_alive()
        try:
            async with http.get(daemon.base_url + "/-/healthy") as response:
                if response.status == 200:
                    return time.monotonic() - daemon.spawned
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.05)
    raise BenchError(f"the daemon did not answer /-/healthy within {START_TIMEOUT:g}s")


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


@dataclass(frozen=True)
class Window:
    """What the daemon did between two scrapes of its /metrics."""

    seconds: float
    by_verb: dict[str, float]  # Admin requests sent
    errors: dict[str, float]
    dropped: dict[str, float]  # state dropped, kind/reason
    count: float
    busy: float  # sum of Admin request durations
    skipped: float  # polls left out for want of budget
    budget_gauge: float  # janus_monitor_poll_budget_used_ratio at the end
    reconcile_age: float  # janus_monitor_reconcile_age_seconds at the end

    @classmethod
    def between(cls, a: Metrics, b: Metrics) -> Window:
        requests = "janus_monitor_admin_requests_total"
        errors = "janus_monitor_poll_errors_total"
        dropped = "janus_monitor_state_dropped_total"
        duration = "janus_monitor_admin_request_duration_seconds"
        skipped = "janus_monitor_polls_skipped_total"
        return cls(
            seconds=b.taken - a.taken,
            by_verb=_delta(b.by_labels(requests, "request"), a.by_labels(requests, "request")),
            errors=_delta(b.by_labels(errors, "request"), a.by_labels(errors, "request")),
            dropped=_delta(
                b.by_labels(dropped, "kind", "reason"), a.by_labels(dropped, "kind", "reason")
            ),
            count=b.value(duration + "_count") - a.value(duration + "_count"),
            busy=b.value(duration + "_sum") - a.value(duration + "_sum"),
            skipped=b.value(skipped) - a.value(skipped),
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
        ordered = sorted(self.by_verb.items(), key=lambda item: -item[1])
        return ", ".join(f"{verb} {n / self.seconds:.1f}/s" for verb, n in ordered) or "none"


@dataclass
class Discovery:
    """What the watcher saw while the daemon learned the server from the Admin API."""

    listed_at: float | None = None  # seconds after spawn: every session and handle listed
    explained_at: float | None = None  # ... and handles_unexplained == 0
    reconcile_age_at_listed: float | None = None
    timeline: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, s, h, unexpl.

    def after_listed(self) -> list[tuple[float, int, int, int]]:
        listed = self.listed_at
        return [] if listed is None else [row for row in self.timeline if row[0] >= listed]


async def watch_discovery(
    http: aiohttp.ClientSession,
    daemon: Daemon,
    sessions: int,
    handles: int,
    give_up_after: float,
    listed: asyncio.Event,
    say: Say,
) -> Discovery:
    found = Discovery()
    next_progress = PROGRESS_PERIOD
    while True:
        daemon.check_alive()
        now = time.monotonic() - daemon.spawned
        view = await server_view(http, daemon)
        seen_sessions = int(view.get("sessions") or 0)
        seen_handles = int(view.get("handles") or 0)
        unexplained = int(view.get("handles_unexplained") or 0)
        found.timeline.append((now, seen_sessions, seen_handles, unexplained))
        if found.listed_at is None and seen_sessions >= sessions and seen_handles >= handles:
            found.listed_at = now
            metrics = await scrape(http, daemon)
            found.reconcile_age_at_listed = metrics.value("janus_monitor_reconcile_age_seconds")
            listed.set()
            say(
                f"  t={now:5.1f}s  every session and handle listed ({seen_sessions} sessions, "
                f"{seen_handles} handles; reconcile age {found.reconcile_age_at_listed:.1f} s)"
            )
        if found.listed_at is not None and seen_handles >= handles and unexplained == 0:
            found.explained_at = now
            say(f"  t={now:5.1f}s  every handle explained (handles_unexplained 0)")
            return found
        if now >= next_progress:
            metrics = await scrape(http, daemon)
            sent = metrics.by_labels("janus_monitor_admin_requests_total", "request")
            dropped = metrics.by_labels("janus_monitor_state_dropped_total", "kind", "reason")
            say(
                f"  t={now:5.1f}s  sessions {seen_sessions}, handles {seen_handles}, unexplained "
                f"{unexplained}; sent {_counts(sent)}; dropped {_counts(dropped) or 'nothing'}"
            )
            next_progress += PROGRESS_PERIOD
        if now >= give_up_after:
            say(f"  t={now:5.1f}s  stopped waiting (--discovery-timeout {give_up_after:g})")
            return found
        await asyncio.sleep(WATCH_PERIOD)


def _counts(counts: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.0f}" for key, value in sorted(counts.items()) if value)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Results:
    populate_seconds: float = 0.0
    janus_rss_mb: float | None = None
    threads: JanusThreads = JanusThreads(None, None)
    healthy_after: float = 0.0
    discovery: Discovery = field(default_factory=Discovery)
    discovery_window: Window | None = None
    steady_window: Window | None = None
    steady_view: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, ClientRun] = field(default_factory=dict)
    sweeps: list[Sweep] = field(default_factory=list)
    sweep_means: str = ""
    sweep_errors: int = 0


async def _run(
    args: argparse.Namespace, janus: JanusProcess, cfg: JanusLabConfig, daemon: Daemon, say: Say
) -> Results:
    res = Results()
    janus_pid = janus.pid
    if janus_pid is None:
        raise BenchError("Janus is not running")
    total_handles = args.sessions * args.handles_per_session

    # 1. populate; meanwhile the request thread is the busiest and the Admin HTTP thread idle
    before = thread_cpu(janus_pid)
    res.populate_seconds = await populate(
        cfg.janus_url, args.sessions, args.handles_per_session, args.creators
    )
    res.threads = JanusThreads.find(janus_pid, before, thread_cpu(janus_pid))
    res.janus_rss_mb = rss_mb(janus_pid)
    requests = args.sessions * (1 + args.handles_per_session)
    say(
        f"populated {args.sessions} sessions x {args.handles_per_session} VideoRoom handles: "
        f"{requests} requests from {args.creators} clients in {res.populate_seconds:.1f} s "
        f"({requests / res.populate_seconds:,.0f}/s); Janus RSS {res.janus_rss_mb or 0:.0f} MB"
    )

    async def client_window(label: str, daemon_pid: int | None = None) -> ClientRun:
        meter = CpuMeter(janus_pid, res.threads, daemon_pid)
        run = await run_client(cfg.janus_url, args.seconds, args.rate, label)
        return dataclasses.replace(run, cpu=meter.read())

    def keep(run: ClientRun) -> None:
        res.runs[run.label] = run
        _say_run(say, run)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        listed = await Admin(http, cfg.admin_url, cfg.admin_secret).list_sessions()
        if len(listed) != args.sessions:
            raise BenchError(f"list_sessions shows {len(listed)} sessions, not {args.sessions}")

        # 2. no daemon
        keep(await client_window(NO_DAEMON_BEFORE))

        # 3. the daemon discovers everything: client latency from its start (it lists the
        # sessions' handles), then from when all are listed (it explains them)
        daemon.start()
        res.healthy_after = await wait_healthy(http, daemon)
        say(f"daemon started, answering after {res.healthy_after:.2f} s; t = time since spawn")
        first = await scrape(http, daemon)
        all_listed = asyncio.Event()
        watcher = asyncio.create_task(
            watch_discovery(
                http, daemon, args.sessions, total_handles, args.discovery_timeout, all_listed, say
            )
        )

        def explained_at() -> float | None:
            if watcher.done() and not watcher.cancelled() and watcher.exception() is None:
                return watcher.result().explained_at
            return None

        async def discovery_window(label: str) -> None:
            before = await scrape(http, daemon)
            run = await client_window(label, daemon.pid)
            window = Window.between(before, await scrape(http, daemon))
            end = window.seconds + before.taken - daemon.spawned
            explained = explained_at()
            note = ""
            if explained is not None and explained < end:
                share = max(0.0, 1 - (end - explained) / run.window)
                note = f"discovery ended {share:.0%} into the window"
            keep(dataclasses.replace(run, admin_per_s=window.per_s, note=note))

        await discovery_window(LISTING)
        if not watcher.done():
            listing_done = asyncio.create_task(all_listed.wait())
            await asyncio.wait([watcher, listing_done], return_when=asyncio.FIRST_COMPLETED)
            listing_done.cancel()
            if not watcher.done():
                await discovery_window(EXPLAINING)
        res.discovery = await watcher
        res.discovery_window = Window.between(first, await scrape(http, daemon))
        explained = res.discovery.explained_at

        # 4. steady state, one poll interval after discovery: the main figure
        await asyncio.sleep(POLL_INTERVAL)
        daemon.check_alive()
        start = await scrape(http, daemon)
        label = STEADY if explained is not None else NOT_SETTLED
        run = await client_window(label, daemon.pid)
        res.steady_window = Window.between(start, await scrape(http, daemon))
        res.steady_view = await server_view(http, daemon)
        keep(dataclasses.replace(run, admin_per_s=res.steady_window.per_s))
        daemon.check_alive()
        daemon.stop()

        # 5. no daemon again
        keep(await client_window(NO_DAEMON_AFTER))

    # 6. unpaced full sweeps from here while the client measures
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
    ) as sweeper:
        admin = Admin(sweeper, cfg.admin_url, cfg.admin_secret)
        client = asyncio.create_task(client_window(SWEEPS))
        started = time.monotonic()
        while not client.done():
            res.sweeps.append(await full_sweep(admin))
        sent = sum(sweep.requests for sweep in res.sweeps) / (time.monotonic() - started)
        keep(dataclasses.replace(await client, admin_per_s=sent))
        res.sweep_means, res.sweep_errors = admin.mean_ms(), admin.errors
    return res


# --- report -------------------------------------------------------------------------------


def _ms(values: Sequence[int], share: float) -> float:
    return percentile(values, share) / 1000 if values else float("nan")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _say_run(say: Say, run: ClientRun) -> None:
    both = run.values()
    extra = "".join(
        [f"; errors {run.errors}" if run.errors else "", f"; {run.note}" if run.note else ""]
    )
    say(
        f"  {run.label:<21} create+attach p50 {_ms(both, 0.5):.3f} ms  p99 "
        f"{_ms(both, 0.99):.3f} ms  ({len(both)} round trips in {run.window:.1f} s{extra})"
    )


def pooled(runs: Sequence[ClientRun], label: str) -> ClientRun:
    latencies: dict[str, list[int]] = {}
    errors: dict[str, int] = {}
    for run in runs:
        for kind, values in run.latencies_us.items():
            latencies.setdefault(kind, []).extend(values)
        for key, count in run.errors.items():
            errors[key] = errors.get(key, 0) + count

    def mean(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.fmean(present) if present else None

    cpu = Cpu(
        janus=mean([r.cpu.janus for r in runs]),
        request_thread=mean([r.cpu.request_thread for r in runs]),
        admin_http=mean([r.cpu.admin_http for r in runs]),
        other=mean([r.cpu.other for r in runs]),
    )
    return ClientRun(
        label=label,
        latencies_us=latencies,
        errors=errors,
        cycles=sum(r.cycles for r in runs),
        window=sum(r.window for r in runs),
        max_late_ms=max(r.max_late_ms for r in runs),
        cpu=cpu,
    )


def client_table(runs: Sequence[ClientRun]) -> list[str]:
    header = (
        "client latency, ms",
        "cycles/s",
        "c+a p50",
        "c+a p99",
        "c+a max",
        "create p99",
        "attach p99",
        "errors",
        "Janus CPU",
        "req thread",
        "admin HTTP",
        "daemon CPU",
        "other CPU",
        "Admin req/s",
    )
    lines: list[tuple[str, ...]] = [header]
    for run in runs:
        both = run.values()
        lines.append(
            (
                run.label,
                f"{run.cycles / run.window:.0f}" if run.window else "-",
                f"{_ms(both, 0.5):.3f}",
                f"{_ms(both, 0.99):.3f}",
                f"{both[-1] / 1000:.1f}" if both else "-",
                f"{_ms(run.values(('create',)), 0.99):.3f}",
                f"{_ms(run.values(('attach',)), 0.99):.3f}",
                str(sum(run.errors.values())),
                _pct(run.cpu.janus),
                _pct(run.cpu.request_thread),
                _pct(run.cpu.admin_http),
                _pct(run.cpu.daemon),
                _pct(run.cpu.other),
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


def _secs(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def report(args: argparse.Namespace, res: Results, say: Say) -> None:
    total_handles = args.sessions * args.handles_per_session
    runs = res.runs
    without = pooled([runs[NO_DAEMON_BEFORE], runs[NO_DAEMON_AFTER]], "no daemon (pooled)")
    with_daemon = runs.get(STEADY) or runs[NOT_SETTLED]
    rows = [runs[NO_DAEMON_BEFORE], runs[NO_DAEMON_AFTER], without, runs[LISTING]]
    rows += [runs[EXPLAINING]] if EXPLAINING in runs else []
    rows.append(with_daemon)
    say("")
    for line in client_table([*rows, runs[SWEEPS]]):
        say(line)
    say(
        "(c+a: create and attach round trips, each timed alone, from a separate process; CPU: "
        f"seconds per wall second, of {os.cpu_count()} CPUs; other CPU: the host's busy time "
        "not used by Janus, the daemon, the client or this process; Admin req/s: the "
        "daemon's, or the sweeps')"
    )
    before = _ms(runs[NO_DAEMON_BEFORE].values(), 0.99)
    after = _ms(runs[NO_DAEMON_AFTER].values(), 0.99)
    spread = abs(before - after) / min(before, after)
    say(f"(noise: the two no-daemon windows' c+a p99 differ by {spread:.0%})")
    busy = [run.label for run in runs.values() if (run.cpu.other or 0.0) > OTHER_CPU_WARNING]
    if busy:
        say(
            f"(WARNING: processes outside this benchmark used more than {OTHER_CPU_WARNING:.0%} "
            f"of a CPU during: {', '.join(busy)}; their latency figures are unreliable)"
        )
    say("")

    d = res.discovery
    say("daemon discovery (t = seconds since the daemon was spawned):")
    say(
        f"  every session and handle listed at t = {_secs(d.listed_at)} (reconcile age then "
        f"{_secs(d.reconcile_age_at_listed)})"
    )
    say(f"  every handle explained at t = {_secs(d.explained_at)}")
    later = d.after_listed()
    if later and d.explained_at is None:
        say(
            f"  after the full listing: handles {min(r[2] for r in later)}.."
            f"{max(r[2] for r in later)}, unexplained {min(r[3] for r in later)}.."
            f"{max(r[3] for r in later)} (last {later[-1][3]})"
        )
    for name, window in (("discovery", res.discovery_window), ("steady", res.steady_window)):
        if window is None:
            continue
        say(
            f"  {name:<9} window {window.seconds:5.1f} s: {window.per_s:5.1f} Admin requests/s, "
            f"mean {window.mean_ms:.3f} ms; budget used {window.budget:.2%} (duration_sum / "
            f"wall), gauge {window.budget_gauge:.2%}; polls skipped {window.skipped:.0f}; "
            f"reconcile age at the end {window.reconcile_age:.1f} s"
        )
        say(f"    sent: {window.mix()}")
        if window.errors:
            say(f"    errors: {_counts(window.errors)}")
        if window.dropped:
            say(f"    state dropped: {_counts(window.dropped)}")
    view = res.steady_view
    say(
        f"  at the end: {view.get('sessions')} sessions, {view.get('handles')} handles, "
        f"{view.get('handles_unexplained')} unexplained"
    )
    if res.sweeps:
        seconds = statistics.median(s.seconds for s in res.sweeps)
        requests = statistics.median(s.requests for s in res.sweeps)
        say(
            f"unpaced full sweep: {len(res.sweeps)} sweeps of {requests:,.0f} requests "
            f"({res.sweeps[0].handles:,} handle_info), median {seconds:.2f} s = "
            f"{requests / seconds:,.0f} requests/s; mean round trip {res.sweep_means}"
        )
    say("")
    base_p99 = _ms(without.values(), 0.99)
    ratio = _ms(with_daemon.values(), 0.99) / base_p99
    caveat = "" if with_daemon.label == STEADY else " (steady state not reached: see above)"
    say(
        f"client p99 with daemon polling <= {TARGET_P99_RATIO} x without: {ratio:.2f} "
        f"{'OK' if ratio <= TARGET_P99_RATIO else 'NOT MET'}{caveat}"
    )
    listed = d.listed_at
    ok = listed is not None and listed <= TARGET_RECONCILE_SECONDS
    shown = f"{listed:.1f}" if listed is not None else f"not reached in {args.discovery_timeout:g}"
    say(
        f"full reconcile of {total_handles} handles <= {TARGET_RECONCILE_SECONDS:g} s: {shown} "
        f"{'OK' if ok else 'NOT MET'}"
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
        default=360.0,
        help="seconds after the daemon's start to stop waiting for every handle to be explained "
        "(default 360)",
    )
    parser.add_argument(
        "--daemon-log-level",
        choices=("warning", "info"),
        default="warning",
        help="info keeps the daemon's per-poll log lines (with --keep)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    return parser


def source_version() -> str:
    """The commit the daemon runs from, and whether monitor/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "monitor"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in monitor/' if dirty else ''}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.sessions < 1 or args.handles_per_session < 1:
        print("--seconds, --rate, --sessions, --handles-per-session must be > 0", file=sys.stderr)
        return 2

    def say(text: str = "") -> None:
        print(text, flush=True)

    try:
        binary = janus_binary()
    except RuntimeError as exc:
        print(f"bench.admin_poll: {exc}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="janus-monitor-bench-admin-"))
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
    config.write_text(
        daemon_config(daemon_port, cfg.admin_url, cfg.admin_secret, args.daemon_log_level)
    )
    daemon = Daemon(config, daemon_port, tmp / "daemon.out", tmp / "daemon.err")
    janus = JanusProcess(cfg, binary=binary)
    started = time.monotonic()
    failed = False
    try:
        write_janus_config(tmp / "conf", cfg)
        with janus.start(tmp / "conf", tmp / "janus.log"):
            say(
                f"janus-monitor Admin polling benchmark: Janus "
                f"{(janus.info or {}).get('version_string', '?')} ({binary}), Python "
                f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs"
            )
            say(
                f"  {args.sessions} sessions x {args.handles_per_session} VideoRoom handles, "
                f"session_timeout 0, no event handler, debug_level 2; client: {args.rate:g} "
                f"create+attach+destroy cycles/s, {args.seconds:g} s windows, own process"
            )
            say(
                f"  daemon: poll_interval {POLL_INTERVAL:g}s, poll_budget {POLL_BUDGET:.0%}, "
                f"reconcile_interval {RECONCILE_INTERVAL:g}s, log level {args.daemon_log_level}; "
                f"source {source_version()}"
            )
            say("")
            try:
                res = asyncio.run(_run(args, janus, cfg, daemon, say))
            finally:
                daemon.stop()
            if not janus.running:
                raise BenchError(f"Janus died during the run:\n{janus.log_tail()}")
    except (BenchError, RuntimeError, aiohttp.ClientError, OSError, ValueError) as exc:
        print(f"bench.admin_poll: {exc.__class__.__name__}: {exc}", file=sys.stderr)
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
