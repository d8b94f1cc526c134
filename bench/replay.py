"""``python -m bench.replay`` (``make bench-replay``): 1 M events at 20 k events/s, and RSS.

The whole 10-media capture (a room created, a publisher and a subscriber joined with media,
then kicked, hung up, detached and destroyed) is copied with rewritten ids (``bench.synth``)
and replayed into the daemon (its own process) as 100-event compact bodies on one
connection, paced to the rate (open loop, as a Janus under load sends): 100 copies at a time
are interleaved, so sessions, handles, rooms and publishers come and go all along.

Printed: events/s reached, ack p50/p99/max, the daemon's RSS after 100 k events and at the
end (and after an idle pause), tracked state at the end. Target (issue 18 f): RSS at the end
within 10% of RSS after 100 k events, and tracked state back to 0.

The reference runs first, in the same run: the same client, bodies and pacing against the
bare receiver (aiohttp + orjson), for ``--reference-events``. Its acks are the floor this
machine's client, loopback and event loop put under any receiver's.

Acks are timed by ``bench.raw_client`` (a blocking keep-alive socket), as a sampleevh thread
waits on libcurl; ``--client aiohttp`` times them through aiohttp's client instead, which
adds its own 0.4-0.6 ms to each on the 2 vCPU bench host (to the reference's too).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import aiohttp

from bench.ingest import Server, percentile
from bench.ingest_servers import against_daemon
from bench.raw_client import RawPoster
from bench.scrape import rss_mb
from bench.synth import Copier

CONCURRENT = 100  # copies interleaved at any time
EVENTS_PER_BODY = 100
TARGET_GROWTH = 0.10


def bodies(total: int) -> Iterator[tuple[int, bytes]]:
    """(events, body) pairs, CONCURRENT copies interleaved event by event."""
    copier = Copier()
    per_copy = len(copier.lines)
    number, sent, pending = 0, 0, []
    while sent < total:
        group = [copier.copy(number + i) for i in range(CONCURRENT)]
        number += CONCURRENT
        for index in range(per_copy):
            for events in group:
                pending.append(events[index])
                if len(pending) == EVENTS_PER_BODY:
                    yield len(pending), b"[" + b",".join(pending) + b"]"
                    sent += len(pending)
                    pending = []
    if pending:
        yield len(pending), b"[" + b",".join(pending) + b"]"


async def tracked(http: aiohttp.ClientSession, server: Server) -> dict[str, float]:
    async with http.get(server.base_url + "/metrics") as reply:
        text = await reply.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("janus_monitor_tracked{"):
            kind = line.split('kind="')[1].split('"')[0]
            out[kind] = float(line.rsplit(" ", 1)[1])
    return out


class Pacing:
    """One paced send: each body's due time (open loop), its ack, the check that it was
    applied, and with ``marks`` the server's RSS every 100 k events."""

    def __init__(self, server: Server, rate: float, marks: list[tuple[int, float]] | None) -> None:
        self.server, self.rate, self.marks = server, rate, marks
        self.acks: list[float] = []
        self.sent, self.next_mark = 0, 100_000
        self.started = time.perf_counter()

    def delay(self) -> float:
        return self.started + self.sent / self.rate - time.perf_counter()

    def answered(self, count: int, began: float, status: int, answer: dict[str, Any]) -> None:
        self.acks.append((time.perf_counter() - began) * 1000)
        if status != 200 or answer.get("rejected") or answer.get("duplicate"):
            raise RuntimeError(f"refused or not applied: {status} {answer}")
        self.sent += count
        if self.marks is not None and self.sent >= self.next_mark:
            self.marks.append((self.sent, rss_mb(self.server)))
            self.next_mark += 100_000

    def figures(self) -> tuple[list[float], int, float]:
        """The ack times in ms, events sent, seconds."""
        return self.acks, self.sent, time.perf_counter() - self.started


async def send_paced(
    http: aiohttp.ClientSession,
    server: Server,
    events: int,
    rate: float,
    marks: list[tuple[int, float]] | None = None,
) -> tuple[list[float], int, float]:
    """Every body at its due time, through aiohttp's client."""
    pacing = Pacing(server, rate, marks)
    for count, body in bodies(events):
        delay = pacing.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        began = time.perf_counter()
        async with http.post(server.url, data=body) as reply:
            answer = await reply.json()
        pacing.answered(count, began, reply.status, answer)
    return pacing.figures()


def send_paced_raw(
    server: Server,
    events: int,
    rate: float,
    marks: list[tuple[int, float]] | None = None,
) -> tuple[list[float], int, float]:
    """``send_paced`` through the lean client (``bench.raw_client``). It blocks: nothing else
    runs meanwhile, and a blocking send and recv are what keeps the client's share small."""
    poster = RawPoster("127.0.0.1", server.port, server.path)
    try:
        pacing = Pacing(server, rate, marks)
        for count, body in bodies(events):
            delay = pacing.delay()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            status, answer = poster.post_json(body)
            pacing.answered(count, began, status, answer)
    finally:
        poster.close()
    return pacing.figures()


async def paced(
    args: argparse.Namespace,
    http: aiohttp.ClientSession,
    server: Server,
    events: int,
    marks: list[tuple[int, float]] | None = None,
) -> tuple[list[float], int, float]:
    if args.client == "raw":
        return send_paced_raw(server, events, args.rate, marks)
    return await send_paced(http, server, events, args.rate, marks)


def ack_figures(acks: list[float]) -> dict[str, float]:
    ordered = sorted(acks)
    return {
        "ack_p50_ms": percentile(ordered, 0.5),
        "ack_p99_ms": percentile(ordered, 0.99),
        "ack_max_ms": ordered[-1],
    }


async def reference(args: argparse.Namespace, server: Server) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        acks, sent, elapsed = await paced(args, http, server, args.reference_events)
    return {"events": sent, "events_per_s": sent / elapsed, **ack_figures(acks)}


async def run(args: argparse.Namespace, server: Server) -> dict[str, float]:
    figures: dict[str, float] = {"rss_start_mb": rss_mb(server)}
    marks: list[tuple[int, float]] = []
    async with aiohttp.ClientSession() as http:
        acks, sent, elapsed = await paced(args, http, server, args.events, marks)
        figures["events"] = sent
        figures["events_per_s"] = sent / elapsed
        figures["rss_100k_mb"] = marks[0][1] if marks else rss_mb(server)  # a short run
        figures["rss_end_mb"] = rss_mb(server)
        await asyncio.sleep(args.idle)
        figures["rss_idle_mb"] = rss_mb(server)
        state = await tracked(http, server)
    figures.update(ack_figures(acks))
    print("RSS by events sent: " + ", ".join(f"{n // 1000}k {mb:.0f} MB" for n, mb in marks))
    print(f"tracked at the end: {state}")
    figures["tracked_end"] = sum(state.get(k, 0) for k in ("sessions", "handles", "publishers"))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=20_000.0, help="events per second")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle after the replay")
    parser.add_argument("--reference-events", type=int, default=600_000,
                        help="events sent to the bare receiver first (0: none)")  # fmt: skip
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="the sender: bench.raw_client, or aiohttp's (its own 0.4-0.6 ms "
                             "per ack included)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.reference_events:
        bare = against_daemon("replay-bare", partial(reference, args), bare=True)
        print(f"reference, bare aiohttp+orjson: {bare['events']:,.0f} events at "
              f"{bare['events_per_s']:,.0f} events/s; ack p50 {bare['ack_p50_ms']:.2f} ms, "
              f"p99 {bare['ack_p99_ms']:.2f} ms, max {bare['ack_max_ms']:.1f} ms")  # fmt: skip
    figures = against_daemon("replay", partial(run, args))
    print(f"client: {args.client}")
    print(f"janus-monitor: {figures['events']:,.0f} events in at "
          f"{figures['events_per_s']:,.0f} events/s "
          f"(asked {args.rate:,.0f}); ack p50 {figures['ack_p50_ms']:.2f} ms, "
          f"p99 {figures['ack_p99_ms']:.2f} ms, max {figures['ack_max_ms']:.1f} ms")  # fmt: skip
    print(f"RSS: {figures['rss_start_mb']:.0f} MB at start, {figures['rss_100k_mb']:.0f} MB "
          f"after 100k, {figures['rss_end_mb']:.0f} MB at the end, "
          f"{figures['rss_idle_mb']:.0f} MB after {args.idle:.0f} s idle")  # fmt: skip
    growth = figures["rss_end_mb"] / figures["rss_100k_mb"] - 1
    flat = growth <= TARGET_GROWTH
    print(f"end vs after 100k: {growth:+.1%} (target <= +{TARGET_GROWTH:.0%}): "
          f"{'met' if flat else 'NOT MET'}")  # fmt: skip
    empty = figures["tracked_end"] == 0
    print(f"tracked sessions+handles+publishers at the end: {figures['tracked_end']:.0f} "
          f"(target 0): {'met' if empty else 'NOT MET'}")  # fmt: skip
    return 0 if flat and empty else 1


if __name__ == "__main__":
    sys.exit(main())
