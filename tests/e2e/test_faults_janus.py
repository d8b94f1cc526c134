"""Faults of the Janus process itself, on a real Janus 1.1.2 with aiortc participants: killed
and restarted in the middle of a call, and its request thread stalled (SIGSTOP, SIGCONT).

The e2e daemon polls every second with the default poll_budget (5%); an Admin request gives up
after the poll interval (1 s, monitor.janus.clients.request_timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

import lab.janus
from tests.conftest import body_paths, sample, series
from tests.e2e.conftest import ROOM, SERVER_NAME, JanusLab, PublishFactory, SubscribeFactory

pytestmark = pytest.mark.e2e

R = str(ROOM)
VIDEOROOM = "janus.plugin.videoroom"
DURATION = "janus_monitor_admin_request_duration_seconds"


def signal_janus(the_lab: JanusLab, sig: signal.Signals) -> None:
    """Send a signal to Janus's process group (it runs alone in its own session)."""
    pid = the_lab.process.pid
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def up(samples: dict[Any, float], name: str = SERVER_NAME) -> float | None:
    return sample(samples, "janus_up", server=name)


def polls(samples: dict[Any, float], name: str = SERVER_NAME) -> float:
    return sample(samples, "janus_monitor_poll_duration_seconds_count", server=name) or 0.0


def of_server(samples: dict[Any, float], metric: str, name: str = SERVER_NAME) -> list[Any]:
    return [labels for labels in series(samples, metric) if labels.get("server") == name]


# --- killed and restarted ---------------------------------------------------------------------


@pytest.mark.parametrize("events", ["events", "no_events"])
async def test_janus_killed_and_restarted_forgets_the_old_process_on_the_next_poll(
    janus_lab: JanusLab,
    publish: PublishFactory,
    subscribe: SubscribeFactory,
    tmp_path: Path,
    events: str,
) -> None:
    """SIGKILL mid-call: janus_up 0; a fresh Janus on the same ports: janus_up 1, and the scrape
    that first shows it up has none of the old sessions, handles or publishers (with the new
    Janus's events off too, so the poll alone must do it)."""
    name = janus_lab.name
    alice = await publish("alice")
    viewer = await subscribe([alice.id])

    async def in_call() -> None:
        samples = await janus_lab.samples()
        assert up(samples) == 1
        assert sample(samples, "janus_sessions", server=name) == 2
        assert sample(samples, "janus_handles", server=name, plugin=VIDEOROOM) == 2
        assert sample(samples, "janus_videoroom_room_publishers", server=name, room=R) == 1
        assert sample(samples, "janus_videoroom_room_subscribers", server=name, room=R) == 1
        assert len(of_server(samples, "janus_videoroom_publisher_info")) == 1

    await janus_lab.eventually(in_call, "the call in state and /metrics")
    old_sessions = set(janus_lab.server.sessions)
    old_publishers = set(janus_lab.server.publishers)
    assert len(old_sessions) == 2 and len(old_publishers) == 1

    killed = time.monotonic()
    signal_janus(janus_lab, signal.SIGKILL)
    assert await asyncio.to_thread(janus_lab.process.stop) == -signal.SIGKILL

    async def down() -> None:
        assert up(await janus_lab.samples()) == 0

    took_down = await janus_lab.eventually(down, "janus_up 0 after SIGKILL")
    cfg = janus_lab.cfg
    conf = tmp_path / "janus-conf"
    if events == "no_events":  # no `started` event to reset state: the polls must
        cfg = dataclasses.replace(cfg, events_broadcast=False)
        conf = tmp_path / "janus-conf-quiet"
        lab.janus.write_janus_config(conf, cfg)
    janus_lab.process.cfg = cfg
    await asyncio.to_thread(janus_lab.process.start, conf, tmp_path / "janus-restarted.log")
    restarted = time.monotonic()
    for person in (viewer, alice):  # their sessions died with the old process
        with contextlib.suppress(Exception):
            await person.close()
    seen: dict[str, Any] = {}

    async def back_up() -> None:
        samples = await janus_lab.samples()
        assert up(samples) == 1
        seen.setdefault("samples", samples)
        seen.setdefault("sessions", set(janus_lab.server.sessions))
        seen.setdefault("publishers", set(janus_lab.server.publishers))

    took_up = await janus_lab.eventually(back_up, "janus_up 1 after the restart", within=20)
    first_up = seen["samples"]  # the first scrape that showed the new Janus up
    assert not old_sessions & seen["sessions"]
    assert not old_publishers & seen["publishers"]
    assert sample(first_up, "janus_sessions", server=name) == 0
    assert of_server(first_up, "janus_handles") == []
    assert of_server(first_up, "janus_videoroom_publisher_info") == []
    assert of_server(first_up, "janus_videoroom_publisher_bitrate_bits_per_second") == []
    assert of_server(first_up, "janus_videoroom_publisher_received_bytes_total") == []
    assert sample(first_up, "janus_videoroom_room_publishers", server=name, room=R) == 0
    assert sample(first_up, "janus_videoroom_room_subscribers", server=name, room=R) == 0
    # The same static room again, from the new process's list.
    cap = "janus_videoroom_room_bitrate_cap_bits_per_second"
    assert sample(first_up, cap, server=name, room=R) == 256000
    tracked = {
        labels["kind"]: first_up[("janus_monitor_tracked", frozenset(labels.items()))]
        for labels in series(first_up, "janus_monitor_tracked")
    }
    assert tracked["sessions"] == tracked["handles"] == tracked["publishers"] == 0
    assert janus_lab.server.handle_count == 0
    print(
        f"{events}: janus_up 0 {took_down:.2f} s after SIGKILL; a fresh Janus answering "
        f"{restarted - killed:.2f} s after the kill, janus_up 1 {took_up:.2f} s later, "
        f"with the old 2 sessions, 2 handles and 1 publisher gone in that same scrape"
    )


# --- the request thread stalled ---------------------------------------------------------------


def duration_buckets(samples: dict[Any, float]) -> dict[float, float]:
    """le -> cumulative count of the admin request duration histogram of the lab server."""
    return {
        float(labels["le"]): samples[(f"{DURATION}_bucket", frozenset(labels.items()))]
        for labels in series(samples, f"{DURATION}_bucket")
        if labels["server"] == SERVER_NAME
    }


def ingest_bodies() -> list[bytes]:
    """Real sampleevh bodies, re-addressed to the lab server."""
    return [
        p.read_bytes().replace(b'"janus-lab-1"', f'"{SERVER_NAME}"'.encode())
        for p in body_paths("10-media")[:40]
    ]


async def test_a_stalled_janus_times_polls_out_without_stalling_ingest(
    janus_lab: JanusLab, publish: PublishFactory
) -> None:
    """SIGSTOP: the outstanding Admin request times out after 1 s and janus_up goes 0 while
    webhook POSTs keep being answered in milliseconds; the slow request lands above the
    histogram's 0.5 s bucket; SIGCONT: janus_up 1 again."""
    await publish("alice")
    daemon = janus_lab.daemon
    polling = daemon.runtime.scope.polling
    assert polling is not None
    admin = polling.pollers[SERVER_NAME].admin

    async def steady() -> None:
        samples = await janus_lab.samples()
        assert up(samples) == 1 and polls(samples) >= 3

    await janus_lab.eventually(steady, "a few good polls")
    before = await janus_lab.samples()
    bodies = ingest_bodies()
    latencies: list[float] = []
    while_outstanding: list[float] = []  # POSTs answered while an Admin request hung
    stopped = time.monotonic()
    signal_janus(janus_lab, signal.SIGSTOP)
    try:
        went_down: float | None = None
        sent = 0
        while went_down is None or sent < len(bodies):
            busy = admin.busy
            started = time.monotonic()
            status, answer, _ = await daemon.post_events(bodies[sent % len(bodies)])
            latency = time.monotonic() - started
            assert status == 200 and answer["accepted"] >= 1, answer
            latencies.append(latency)
            if busy and admin.busy:
                while_outstanding.append(latency)
            sent += 1
            if went_down is None and up(await janus_lab.samples()) == 0:
                went_down = time.monotonic() - stopped
            assert time.monotonic() - stopped < 30, "janus_up did not go 0 within 30 s"
            await asyncio.sleep(0.02)
        during = await janus_lab.samples()
    finally:
        signal_janus(janus_lab, signal.SIGCONT)
    resumed = time.monotonic()

    async def back() -> None:
        samples = await janus_lab.samples()
        assert up(samples) == 1 and polls(samples) > polls(during)

    # After a 1 s timeout the budget pauses the poller for 1 s x 95/5 = 19 s (MAX_PAUSE 20).
    took_back = await janus_lab.eventually(back, "janus_up 1 after SIGCONT", within=45)

    assert while_outstanding, "no POST overlapped the hung Admin request"
    assert max(latencies) < 0.5, sorted(latencies)[-5:]
    timeouts = [
        (during.get(("janus_monitor_poll_errors_total", frozenset(labels.items()))) or 0)
        - (before.get(("janus_monitor_poll_errors_total", frozenset(labels.items()))) or 0)
        for labels in of_server(during, "janus_monitor_poll_errors_total")
    ]
    assert sum(timeouts) >= 1
    old, new = duration_buckets(before), duration_buckets(during)
    slow_before = old[float("inf")] - old[0.5]
    slow_during = new[float("inf")] - new[0.5]
    assert slow_during >= slow_before + 1, (old, new)
    assert new[0.5] - old[0.5] <= new[float("inf")] - old[float("inf")] - 1
    total = f"{DURATION}_sum"
    assert (sample(during, total, server=SERVER_NAME) or 0) - (
        sample(before, total, server=SERVER_NAME) or 0
    ) >= 1.0
    received = "janus_monitor_events_received_total"
    assert sum(v for (n, _), v in during.items() if n == received) > sum(
        v for (n, _), v in before.items() if n == received
    )
    print(
        f"SIGSTOP: janus_up 0 after {went_down:.2f} s; {len(latencies)} webhook POSTs meanwhile, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
        f"({len(while_outstanding)} while the Admin request hung, max "
        f"{max(while_outstanding) * 1000:.1f} ms); slow Admin requests (> 0.5 s) "
        f"{slow_before:g} -> {slow_during:g}; janus_up 1 {took_back:.2f} s after SIGCONT "
        f"(stall {resumed - stopped:.1f} s)"
    )
