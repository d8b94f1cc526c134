"""``python -m bench.scrape`` (``make bench-scrape``): /metrics and the API with 10 k publishers.

The daemon (its own process) is loaded with copies of the 10-media capture up to its kick
(``bench.synth``): each copy one publisher and one subscriber with their media stats, ten
copies to a room, so 10 k copies are 1 k rooms, 10 k publishers and 10 k subscribers. Then:

- RSS of the daemon process, loaded;
- ``GET /metrics`` and ``GET /api/v1/publishers`` wall time, back to back;
- the ack time of 1-event webhook POSTs sent every 5 ms (open loop) while scrapes run back
  to back from another process (``bench.scrape_client``, as Prometheus scrapes from
  elsewhere), beside the same POSTs with no scrape running (the reference, same run).

Targets (issue 18 d): render <= 150 ms, RSS <= 200 MB, webhook ack p99 <= 10 ms while scrapes
run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.ingest import Server, percentile
from bench.ingest_servers import against_daemon
from bench.synth import EMITTER, batches, copies, scenario, until
from monitor.signals.bitrate import STALE_AFTER

TRANSPORT = 128
TARGETS = {"render_ms": 150.0, "rss_mb": 200.0, "ack_p99_ms": 10.0}


def rss_mb(server: Server) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def load(http: aiohttp.ClientSession, server: Server, participants: int) -> int:
    """Post every copy's events (transport notices left out: nothing tracks them)."""
    template = [e for e in until(scenario("10-media"), "kicked") if e.get("type") != TRANSPORT]
    sent = 0
    chunk: list[dict[str, Any]] = []
    for events in copies(template, participants, per_room=10):
        chunk.extend(events)
        if len(chunk) >= 5000:
            sent += await post_all(http, server, chunk)
            chunk = []
    return sent + await post_all(http, server, chunk)


async def post_all(http: aiohttp.ClientSession, server: Server, items: list[dict[str, Any]]) -> int:
    count = 0
    for body in batches(items):
        async with http.post(server.url, data=body) as reply:
            answer = await reply.json()
            if reply.status != 200 or answer["rejected"] or answer.get("duplicate"):
                raise RuntimeError(f"load refused or not applied: {reply.status} {answer}")
            count += answer["accepted"]
    return count


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, bytes]:
    """Milliseconds to the whole answer, and the answer."""
    started = time.perf_counter()
    async with http.get(url) as reply:
        body = await reply.read()
        assert reply.status == 200, reply.status
    return (time.perf_counter() - started) * 1000, body


async def acks(
    http: aiohttp.ClientSession, server: Server, seconds: float, period: float = 0.005
) -> list[float]:
    """Open loop: one 1-event POST every ``period`` (each on its own schedule), ack times in ms."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0

    async def one(number: int) -> None:
        body = orjson.dumps([{"emitter": EMITTER, "type": 256, "timestamp": number,
                              "event": {"name": "bench"}}])  # fmt: skip
        started = time.perf_counter()
        async with http.post(server.url, data=body) as reply:
            await reply.read()
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    while (now := loop.time()) < start + seconds:
        tasks.append(asyncio.create_task(one(int(now * 1e6) * 1000 + n)))
        n += 1
        await asyncio.sleep(max(0.0, start + n * period - loop.time()))
    await asyncio.gather(*tasks)
    return latencies


async def scrapes(url: str, seconds: float) -> list[float]:
    """GETs back to back from a process of their own (``bench.scrape_client``)."""
    scraper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.scrape_client", url, str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await scraper.communicate()
    if scraper.returncode != 0:
        raise RuntimeError(f"bench.scrape_client exited {scraper.returncode}")
    times: list[float] = orjson.loads(out)
    return times


def stats(values: Sequence[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {percentile(ordered, 0.5):7.2f}  p99 {percentile(ordered, 0.99):7.2f}  "
        f"max {ordered[-1]:7.2f} ms  (n={len(ordered)})"
    )


async def run(args: argparse.Namespace, server: Server) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:
        rss_empty = rss_mb(server)
        started = time.perf_counter()
        events = await load(http, server, args.publishers)
        loading = time.perf_counter() - started
        print(f"loaded {events:,} events for {args.publishers:,} publishers and subscribers "
              f"in {loading:.1f} s")  # fmt: skip
        if loading > STALE_AFTER:  # the first copies' stats have aged out of the bitrate series
            print(f"WARNING: loading took {loading:.0f} s, over the {STALE_AFTER:.0f} s after "
                  "which a bitrate series is left out: /metrics is smaller than on a faster "
                  "host, and the figures do not compare")  # fmt: skip
        rss_loaded = rss_mb(server)
        metrics_ms, body = await timed_get(http, server.base_url + "/metrics")
        series = sum(1 for line in body.splitlines() if line[:1] != b"#")
        print(f"/metrics: {len(body) / 1e6:.1f} MB, {series:,} series, first render "
              f"{metrics_ms:.0f} ms")  # fmt: skip
        rss = rss_mb(server)
        print(f"RSS: {rss_empty:.0f} MB empty, {rss_loaded:.0f} MB loaded, {rss:.0f} MB after "
              "the first scrape")  # fmt: skip
        figures = {"rss_mb": rss}
        for name, path in (("metrics", "/metrics"), ("publishers", "/api/v1/publishers")):
            times = [(await timed_get(http, server.base_url + path))[0] for _ in range(args.gets)]
            print(f"GET {path:<20} {stats(times)}")
            figures[f"{name}_p50_ms"] = sorted(times)[len(times) // 2]
        figures["render_ms"] = figures["metrics_p50_ms"]
        quiet = await acks(http, server, args.seconds)
        print(f"ack, no scrape (reference):   {stats(quiet)}")
        scraping = asyncio.create_task(scrapes(server.base_url + "/metrics", args.seconds))
        busy = await acks(http, server, args.seconds)
        done = await scraping
        print(f"ack, scrapes back to back:   {stats(busy)}  ({len(done)} scrapes)")
        print(f"GET /metrics meanwhile     {stats(done)}")
        figures["ack_p99_ms"] = percentile(sorted(busy), 0.99)
        figures["ack_max_ms"] = max(busy)
        figures["ack_quiet_p99_ms"] = percentile(sorted(quiet), 0.99)
        return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=10_000)
    parser.add_argument("--gets", type=int, default=10, help="timed GETs of each endpoint")
    parser.add_argument("--seconds", type=float, default=10.0, help="each ack window")
    args = parser.parse_args(argv)
    figures = against_daemon("scrape", partial(run, args))
    met = True
    for key, target in TARGETS.items():
        ok = figures[key] <= target
        met &= ok
        print(f"{key}: {figures[key]:.1f} (target <= {target:g}): {'met' if ok else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
