"""``python -m bench.ingest`` (``make bench``): webhook ingest throughput of the real daemon.

Sends real 100-event sampleevh bodies to ``POST /events`` of

- the janus-monitor daemon (``python -m monitor run --config ...``, log level warning), and
- a bare aiohttp + orjson receiver (``bench/bare_receiver.py``) that only parses the body,

each in its own subprocess, in two modes: ``serial`` (one sender waiting for each response, like
the single sampleevh delivery thread of a Janus) and ``4-senders`` (4 concurrent senders). Each
sender has its own ClientSession with one keep-alive connection. One extra serial run goes to a
second daemon with ``log: {level: info, format: json}`` (stdout to /dev/null), to show what the
canonical per-batch log line costs. orjson parse-only events/s (in-process) on the same bodies
is the ceiling.

Bodies (rotated, each exactly 100 events from emitter ``janus-lab-1``):

- 56-evh-compress-burst/00029 and 00048: the bytes Janus sent, gunzipped from ``NNNNN.json.gz``
  (compact JSON; the ``NNNNN.json`` beside them is a re-indented copy with the same content).
- a mix: the first 70 events of 10-media (through its first media-stats burst: core, session,
  handle, transport, videoroom, webrtc and jsep events) then the first 30 of 40-reuse, serialized
  as Janus 1.1.2 does by default (``json = indented``: 3-space indent; this reproduces the
  fixture files byte for byte).

Every daemon reply must be 200 with ``accepted == 100``; the run aborts otherwise.
Target: the daemon reaches at least 70% of the bare receiver's events/s in both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from lab.janus import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "tests" / "fixtures" / "janus-1.1.2" / "events"
EMITTER = "janus-lab-1"
EVENTS_PER_BODY = 100
WEBHOOK_PATH = "/events"
TARGET_RATIO = 0.70
START_TIMEOUT = 20.0
WARMUP_REQUESTS = 100  # per sender, before the timed window
MODES: tuple[tuple[str, int], ...] = (("serial", 1), ("4-senders", 4))
HEADERS = {"Content-Type": "application/json", "Accept": "*/*"}  # what sampleevh sends


class BenchError(Exception):
    """The benchmark cannot give a meaningful number (a server died, a batch was refused...)."""


# --- bodies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    name: str
    data: bytes


def _numbered(scenario: str) -> list[Path]:
    files = sorted((EVENTS_DIR / scenario).glob("[0-9]*.json"))
    if not files:
        raise BenchError(f"no fixture files in {EVENTS_DIR / scenario}")
    return files


def _scenario_events(scenario: str) -> list[Any]:
    events: list[Any] = []
    for path in _numbered(scenario):
        parsed = json.loads(path.read_bytes())
        events.extend(parsed if isinstance(parsed, list) else [parsed])
    return events


def _check_body(body: Body) -> None:
    parsed = orjson.loads(body.data)
    if not isinstance(parsed, list) or len(parsed) != EVENTS_PER_BODY:
        raise BenchError(f"{body.name}: expected a JSON array of {EVENTS_PER_BODY} events")
    emitters = {item.get("emitter") for item in parsed}
    if emitters != {EMITTER}:
        raise BenchError(f"{body.name}: emitters {emitters}, expected only {EMITTER}")


def load_bodies() -> list[Body]:
    bodies: list[Body] = []
    for number in ("00029", "00048"):
        sent = EVENTS_DIR / "56-evh-compress-burst" / f"{number}.json.gz"
        data = gzip.decompress(sent.read_bytes())
        copy = sent.with_suffix("")  # NNNNN.json, the decoded (re-indented) copy
        if copy.exists() and json.loads(copy.read_bytes()) != json.loads(data):
            raise BenchError(f"{sent} and {copy} do not hold the same events")
        bodies.append(Body(f"56-burst/{number} (compact)", data))
    media = _scenario_events("10-media")[:70]
    reuse = _scenario_events("40-reuse")[: EVENTS_PER_BODY - len(media)]
    mix = json.dumps(media + reuse, indent=3, ensure_ascii=False).encode()
    bodies.append(Body("10-media[:70]+40-reuse[:30] (indented)", mix))
    for body in bodies:
        _check_body(body)
    return bodies


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The bench rotates a few bodies, which a 60 s duplicate window would answer from memory: a
# 10 ms window still hashes, looks up, remembers and expires every body, as in production,
# while the rotation (VARIANTS copies of each body) never repeats one within it.
DUPLICATE_WINDOW = "10ms"
VARIANTS = 32
_FIRST_TIMESTAMP = re.compile(rb'"timestamp":(\s*)(\d+)')


def daemon_config(port: int, level: str, fmt: str, guard: bool = True) -> str:
    window = f", duplicate_window: {DUPLICATE_WINDOW}" if guard else ""
    return (
        f"listen: 127.0.0.1:{port}\n"
        f"log: {{level: {level}, format: {fmt}}}\n"
        f"webhook: {{path: {WEBHOOK_PATH}{window}}}\n"
        f"targets:\n  - name: {EMITTER}\n"
    )


def variants(data: bytes, count: int = VARIANTS) -> list[bytes]:
    """``count`` copies of a body that differ in the first event's timestamp (same length)."""
    found = _FIRST_TIMESTAMP.search(data)
    if found is None:
        raise BenchError("a body without a timestamp cannot be varied")
    head, tail = data[: found.start(2)], data[found.end(2) :]
    out = [head + str(int(found[2]) + n).encode() + tail for n in range(count)]
    if len(set(out)) != count:
        raise BenchError("a body without a timestamp cannot be varied")
    return out


@dataclass
class Server:
    label: str
    command: list[str]
    port: int
    stdout_path: Path | None  # None: stdout goes to /dev/null
    stderr_path: Path
    check_accepted: bool
    cwd: Path = REPO_ROOT  # a baseline runs from its own checkout
    proc: subprocess.Popen[bytes] | None = None
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def start(self) -> None:
        stdout: IO[bytes] | int = subprocess.DEVNULL
        if self.stdout_path is not None:
            stdout = self.stdout_path.open("wb")
            self._files.append(stdout)
        stderr = self.stderr_path.open("wb")
        self._files.append(stderr)
        self.proc = subprocess.Popen(
            self.command, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.base_url + "/-/healthy", timeout=1.0) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.label} did not answer /-/healthy within {timeout:g}s{self.tail()}")

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


def make_servers(tmp: Path) -> tuple[Server, Server, Server]:
    python = sys.executable
    bare_port = free_port()
    bare = Server(
        "bare aiohttp+orjson",
        [python, "-m", "bench.bare_receiver", "--port", str(bare_port), "--path", WEBHOOK_PATH],
        bare_port,
        tmp / "bare.out",
        tmp / "bare.err",
        check_accepted=False,
    )
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


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    events_per_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None  # server CPU time per request
    cpu_share: float | None  # server CPU seconds per wall second


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(share * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class Sender:
    """One keep-alive connection posting bodies in turn, as a sampleevh thread does."""

    def __init__(self, server: Server, bodies: Sequence[Body], offset: int) -> None:
        self.server = server
        self.bodies = [copy for body in bodies for copy in variants(body.data)]
        self.next = offset * len(self.bodies) // 4 % len(self.bodies)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, limit_per_host=1),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self.session.close()

    async def post(self) -> None:
        data = self.bodies[self.next]
        self.next = (self.next + 1) % len(self.bodies)
        async with self.session.post(self.server.url, data=data, headers=HEADERS) as response:
            payload = await response.read()
            status = response.status
        if status != 200:
            raise BenchError(f"{self.server.label}: HTTP {status}: {payload[:300]!r}")
        reply = orjson.loads(payload)
        if self.server.check_accepted and (
            not isinstance(reply, dict) or reply.get("accepted") != EVENTS_PER_BODY
        ):
            raise BenchError(
                f"{self.server.label}: batch not fully accepted "
                f"(expected accepted={EVENTS_PER_BODY}): {payload[:300]!r}"
            )

    async def warm_up(self, count: int) -> None:
        for _ in range(count):
            await self.post()

    async def run_until(self, deadline: float, latencies: list[float]) -> None:
        clock = time.perf_counter
        while clock() < deadline:
            started = clock()
            await self.post()
            latencies.append(clock() - started)


async def measure(server: Server, bodies: Sequence[Body], senders: int, seconds: float) -> Sample:
    server.check_alive()
    clients = [Sender(server, bodies, offset=i) for i in range(senders)]
    try:
        await asyncio.gather(*(client.warm_up(WARMUP_REQUESTS) for client in clients))
        per_sender: list[list[float]] = [[] for _ in clients]
        cpu_before = server.cpu_seconds()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(
                client.run_until(deadline, out)
                for client, out in zip(clients, per_sender, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        cpu_after = server.cpu_seconds()
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    server.check_alive()
    latencies = sorted(value for values in per_sender for value in values)
    requests = len(latencies)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Sample(
        events_per_s=EVENTS_PER_BODY * requests / elapsed,
        requests=requests,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        cpu_us_per_request=None if cpu is None or not requests else cpu / requests * 1e6,
        cpu_share=None if cpu is None else cpu / elapsed,
    )


def parse_only(bodies: Sequence[Body], seconds: float) -> float:
    """orjson.loads events/s over the same bodies, in this process, no HTTP."""
    datas = [body.data for body in bodies]
    loads = orjson.loads
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for data in datas:
            loads(data)
        count += len(datas)
    return EVENTS_PER_BODY * count / (time.perf_counter() - started)


# --- report ---------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summarize(samples: Sequence[Sample]) -> Sample:
    return Sample(
        events_per_s=statistics.median(s.events_per_s for s in samples),
        requests=round(statistics.median(s.requests for s in samples)),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        cpu_us_per_request=_median([s.cpu_us_per_request for s in samples]),
        cpu_share=_median([s.cpu_share for s in samples]),
    )


def table(rows: Sequence[tuple[str, str, Sample | float]]) -> list[str]:
    header = ("receiver", "mode", "events/s", "req/s", "p50 ms", "p99 ms", "srv CPU", "us/req")
    lines: list[tuple[str, ...]] = [header]
    for receiver, mode, value in rows:
        if isinstance(value, Sample):
            lines.append(
                (
                    receiver,
                    mode,
                    f"{value.events_per_s:,.0f}",
                    f"{value.events_per_s / EVENTS_PER_BODY:,.0f}",
                    f"{value.p50_ms:.3f}",
                    f"{value.p99_ms:.3f}",
                    _fmt(None if value.cpu_share is None else value.cpu_share * 100, ".0f") + "%",
                    _fmt(value.cpu_us_per_request, ",.0f"),
                )
            )
        else:
            per_body = EVENTS_PER_BODY / value * 1e6
            lines.append((receiver, mode, f"{value:,.0f}", "-", "-", "-", "-", f"{per_body:,.1f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    return out


# --- main -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="events/s and ack latency of POST /events: janus-monitor vs bare aiohttp.",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed window per mode (default 10)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="repeat the whole set N times, report the median"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (configs, server output)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the daemon of this git revision (e.g. HEAD~1), interleaved, and compare",
    )
    return parser


async def _run(
    args: argparse.Namespace,
    bodies: Sequence[Body],
    servers: tuple[Server, Server, Server],
    baseline: Server | None,
    say: Callable[[str], None],
) -> tuple[list[float], dict[tuple[str, str], list[Sample]]]:
    bare, daemon, daemon_info = servers
    parse_rates: list[float] = []
    results: dict[tuple[str, str], list[Sample]] = {}
    plan: list[tuple[str, int, Server]] = []
    for mode, senders in MODES:
        plan += [(mode, senders, bare), (mode, senders, daemon)]
        if baseline is not None:
            plan.append((mode, senders, baseline))
        if senders == 1:
            plan.append((mode, senders, daemon_info))
    parse_seconds = min(args.seconds, 3.0)
    for run in range(1, args.repeat + 1):
        rate = parse_only(bodies, parse_seconds)
        parse_rates.append(rate)
        say(f"run {run}/{args.repeat}  orjson parse-only       {rate:>10,.0f} ev/s")
        for mode, senders, server in plan:
            sample = await measure(server, bodies, senders, args.seconds)
            results.setdefault((server.label, mode), []).append(sample)
            say(
                f"run {run}/{args.repeat}  {server.label:<24} {mode:<9} "
                f"{sample.events_per_s:>10,.0f} ev/s  p50 {sample.p50_ms:.3f} ms  "
                f"p99 {sample.p99_ms:.3f} ms  ({sample.requests} requests)"
            )
    return parse_rates, results


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1:
        print("--seconds must be > 0 and --repeat >= 1", file=sys.stderr)
        return 2

    def say(text: str = "") -> None:
        print(text, flush=True)

    try:
        bodies = load_bodies()
    except (BenchError, OSError, ValueError) as exc:
        print(f"bench.ingest: {exc}", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="janus-monitor-bench-"))
    failed = False
    baseline: Server | None = None
    try:
        with ExitStack() as stack:
            servers = make_servers(tmp)
            running = list(servers)
            if args.baseline:
                where, commit = baseline_checkout(tmp, args.baseline)
                stack.callback(remove_checkout, where)
                baseline = baseline_server(tmp, where, commit, {s.port for s in servers})
                running.append(baseline)
            for server in running:
                stack.callback(server.stop)
                server.start()
            for server in running:
                server.wait_ready()
            say(
                f"janus-monitor ingest benchmark: POST {WEBHOOK_PATH}, Python "
                f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
                f"orjson {orjson.__version__}, {os.cpu_count()} CPUs"
            )
            for body in bodies:
                say(f"  body {body.name}: {EVENTS_PER_BODY} events, {len(body.data):,} bytes")
            say(
                f"  {args.seconds:g} s per mode after {WARMUP_REQUESTS} warm-up requests per "
                f"sender; median of {args.repeat} run(s); servers in their own processes"
            )
            say("")
            parse_rates, results = asyncio.run(_run(args, bodies, servers, baseline, say))
    except BenchError as exc:
        print(f"bench.ingest: {exc}", file=sys.stderr)
        failed = True
        return 1
    finally:
        if args.keep or failed:
            print(f"(temp dir kept: {tmp})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    bare, daemon, daemon_info = servers
    rows: list[tuple[str, str, Sample | float]] = [
        ("orjson parse-only", "in-process", statistics.median(parse_rates))
    ]
    summary = {key: summarize(values) for key, values in results.items()}
    for mode, _ in MODES:
        for server in (bare, daemon, daemon_info, *([baseline] if baseline else [])):
            if (server.label, mode) in summary:
                rows.append((server.label, mode, summary[(server.label, mode)]))
    say("")
    for line in table(rows):
        say(line)
    say("(srv CPU: server process CPU time / wall time; us/req: server CPU per request, or")
    say(" for parse-only, microseconds per 100-event body)")
    say("")
    for mode, _ in MODES:
        ours = summary[(daemon.label, mode)].events_per_s
        base = summary[(bare.label, mode)].events_per_s
        ratio = ours / base
        ok = ratio >= TARGET_RATIO
        say(
            f"{mode}: daemon {ours:,.0f} ev/s = {ratio:.0%} of bare "
            f"(target {TARGET_RATIO:.0%}): {'OK' if ok else 'NOT MET'}"
        )
    if baseline is not None:
        for mode, _ in MODES:
            now_sample = summary[(daemon.label, mode)]
            then_sample = summary[(baseline.label, mode)]
            say(
                f"{mode}: daemon {now_sample.events_per_s:,.0f} ev/s vs {baseline.label} "
                f"{then_sample.events_per_s:,.0f} ev/s = "
                f"{now_sample.events_per_s / then_sample.events_per_s:.0%}"
                f" (p50 {now_sample.p50_ms:.3f} vs {then_sample.p50_ms:.3f} ms)"
            )
    info = summary.get((daemon_info.label, "serial"))
    if info is not None:
        quiet = summary[(daemon.label, "serial")]
        say(
            f"serial with log level info: {info.events_per_s:,.0f} ev/s = "
            f"{info.events_per_s / quiet.events_per_s:.0%} of the daemon at warning "
            f"(p50 {info.p50_ms - quiet.p50_ms:+.3f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
