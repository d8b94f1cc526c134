"""``python -m bench.ingest`` (``make bench``): webhook ingest throughput of the real daemon.

Sends real 100-event sampleevh bodies (``bench/ingest_bodies.py``: two compact as Janus sent
them, one indented as Janus 1.1.2 serializes by default, rotated) to ``POST /events`` of

- the janus-monitor daemon (``python -m monitor run --config ...``, log level warning), and
- a bare aiohttp + orjson receiver (``bench/bare_receiver.py``) that only parses the body,
- with ``--node-exporter [DIR]`` (``make bench-node``), the Node
  mytutorcode/janus-prometheus-exporter on ``POST /event`` (``bench/node_exporter.py``
  obtains and runs it); its non-2xx replies are counted, not fatal,

each in its own subprocess, in two modes: ``serial`` (one sender waiting for each response, like
the single sampleevh delivery thread of a Janus) and ``4-senders`` (4 concurrent senders). Each
sender has its own ClientSession with one keep-alive connection. One extra serial run goes to a
second daemon with ``log: {level: info, format: json}`` (stdout to /dev/null), to show what the
canonical per-batch log line costs. orjson parse-only events/s (in-process) on the same bodies
is the ceiling.

Every daemon reply must be 200 with ``accepted == 100``; the run aborts otherwise.
Targets: the daemon reaches at least 70% of the bare receiver's events/s in both modes, and,
when it runs, more events/s than the Node exporter in both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import orjson

from bench import node_exporter
from bench.ingest_bodies import (
    DUPLICATE_WINDOW,
    EMITTER,
    EVENTS_DIR,
    EVENTS_PER_BODY,
    HEADERS,
    REPO_ROOT,
    START_TIMEOUT,
    VARIANTS,
    WEBHOOK_PATH,
    BenchError,
    Body,
    load_bodies,
    variants,
)
from bench.ingest_report import Sample, percentile, summarize, table, versus
from bench.ingest_servers import (
    Server,
    baseline_checkout,
    baseline_server,
    daemon_config,
    free_port,
    make_servers,
    remove_checkout,
)

# bench.amqp, bench.scrape and bench.admin_poll import these from here.
__all__ = [
    "DUPLICATE_WINDOW", "EMITTER", "EVENTS_DIR", "EVENTS_PER_BODY", "HEADERS", "REPO_ROOT",
    "START_TIMEOUT", "VARIANTS", "WEBHOOK_PATH", "BenchError", "Body", "Sample", "Sender",
    "Server", "daemon_config", "free_port", "load_bodies", "main", "measure", "parse_only",
    "percentile", "variants",
]  # fmt: skip

TARGET_RATIOS = {"serial": 0.80, "4-senders": 0.70}  # of bare, issue 18 a
WARMUP_REQUESTS = 100  # per sender, before the timed window
MODES: tuple[tuple[str, int], ...] = (("serial", 1), ("4-senders", 4))


# --- measurement ----------------------------------------------------------------------------


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
        self.errors = 0  # non-2xx replies, when the server is measured with count_errors

    async def close(self) -> None:
        await self.session.close()

    async def post(self) -> None:
        data = self.bodies[self.next]
        self.next = (self.next + 1) % len(self.bodies)
        async with self.session.post(self.server.url, data=data, headers=HEADERS) as response:
            payload = await response.read()
            status = response.status
        if self.server.count_errors:
            if not 200 <= status < 300:
                self.errors += 1
            return
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
        for client in clients:
            client.errors = 0  # only the timed window's replies count
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
        errors=sum(client.errors for client in clients) if server.count_errors else None,
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
    parser.add_argument(
        "--node-exporter",
        metavar="DIR",
        nargs="?",
        const="",
        help="also run the Node janus-prometheus-exporter, checked out and npm-installed in DIR "
        f"(default {node_exporter.default_dir()}; see bench/node_exporter.py), and compare",
    )
    parser.add_argument(
        "--node-exporter-source",
        metavar="GIT",
        help=f"where to clone it from when DIR has no checkout "
        f"(default {node_exporter.default_source()})",
    )
    return parser


async def _run(
    args: argparse.Namespace,
    bodies: Sequence[Body],
    servers: tuple[Server, Server, Server],
    others: Sequence[Server],
    say: Callable[[str], None],
) -> tuple[list[float], dict[tuple[str, str], list[Sample]]]:
    bare, daemon, daemon_info = servers
    parse_rates: list[float] = []
    results: dict[tuple[str, str], list[Sample]] = {}
    plan: list[tuple[str, int, Server]] = []
    for mode, senders in MODES:
        plan += [(mode, senders, bare), (mode, senders, daemon)]
        plan += [(mode, senders, other) for other in others]
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
                f"p99 {sample.p99_ms:.3f} ms  ({sample.requests} requests"
                + ("" if sample.errors is None else f", {sample.errors} non-2xx")
                + ")"
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
    node: Server | None = None
    try:
        with ExitStack() as stack:
            servers = make_servers(tmp)
            running = list(servers)
            if args.baseline:
                where, commit = baseline_checkout(tmp, args.baseline)
                stack.callback(remove_checkout, where)
                baseline = baseline_server(tmp, where, commit, {s.port for s in servers})
                running.append(baseline)
            if args.node_exporter is not None:
                where = node_exporter.prepare(
                    Path(args.node_exporter or node_exporter.default_dir()),
                    args.node_exporter_source,
                )
                node = node_exporter.node_server(where, tmp, {s.port for s in running})
                running.append(node)
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
            if node is not None:
                say(
                    f"  {node.label}: {node_exporter.REPO}@{node_exporter.COMMIT[:7]} "
                    f"({node_exporter.versions(node.cwd)}), POST {node.path}"
                )
            say(
                f"  {args.seconds:g} s per mode after {WARMUP_REQUESTS} warm-up requests per "
                f"sender; median of {args.repeat} run(s); servers in their own processes"
            )
            say("")
            others = [server for server in (baseline, node) if server is not None]
            parse_rates, results = asyncio.run(_run(args, bodies, servers, others, say))
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
        for server in (bare, daemon, daemon_info, *others):
            if (server.label, mode) in summary:
                rows.append((server.label, mode, summary[(server.label, mode)]))
    say("")
    for line in table(rows):
        say(line)
    say("(srv CPU: server process CPU time / wall time; us/req: server CPU per request, or")
    say(" for parse-only, microseconds per 100-event body)")
    if node is not None:
        say(f"(non-2xx: error replies of the timed window; {node.label}'s events/s counts them)")
    say("")
    for mode, _ in MODES:
        ours = summary[(daemon.label, mode)].events_per_s
        base = summary[(bare.label, mode)].events_per_s
        ratio = ours / base
        ok = ratio >= TARGET_RATIOS[mode]
        say(
            f"{mode}: daemon {ours:,.0f} ev/s = {ratio:.0%} of bare "
            f"(target {TARGET_RATIOS[mode]:.0%}): {'OK' if ok else 'NOT MET'}"
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
    if node is not None:
        for mode, _ in MODES:
            say(
                versus(mode, summary[(daemon.label, mode)], node.label, summary[(node.label, mode)])
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
