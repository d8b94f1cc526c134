"""The operator stack for real: Debian's Prometheus scraping the daemon during a real-Janus
scenario, with the rules loaded and a real Alertmanager behind it.

Every dashboard panel query returns data (the scenario has an over-cap publisher, an
uncapped room, a subscriber, a reused handle, an ICE failure, a publisher whose video stops,
dry_run remediation). The alerts reach Alertmanager with their labels: an over-bitrate
publisher, an uncapped room, a Janus without public IP, and, once Janus is stopped,
JanusDown. The rules are loaded with their ``for:`` shortened to 1 s, so the test watches
them fire in seconds (the real durations are covered by promtool's unit tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lab.janus import LabRoom, free_port
from lab.prometheus import (
    RULES,
    Service,
    rules_with_short_for,
    start_alertmanager,
    start_prometheus,
)
from lab.webrtc import rewrite_candidates, without_candidates
from tests.conftest import IN_CI
from tests.e2e.conftest import JanusLab, PublishFactory, SubscribeFactory
from tests.test_dashboards import as_promql, panel_queries
from tools.dashboards import BROKER_ONLY, FAULT_ONLY

pytestmark = pytest.mark.e2e

CAPPED, OPEN = 2001, 2003


@pytest.fixture
def janus_settings() -> dict[str, Any]:
    return {"rooms": (LabRoom(1234), LabRoom(CAPPED, bitrate=128_000),
                      LabRoom(OPEN, bitrate=0, bitrate_cap=False))}  # fmt: skip


@pytest.fixture
def daemon_settings() -> dict[str, Any]:
    rules = {"sustain": "1s", "step_interval": "2s"}
    return {"remediation": {"mode": "dry_run", "over_bitrate": rules}}


@pytest.fixture
async def stack(janus_lab: JanusLab, tmp_path: Path) -> AsyncIterator[tuple[Service, Service]]:
    try:
        alertmanager = await asyncio.to_thread(start_alertmanager, tmp_path)
    except FileNotFoundError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    rules = rules_with_short_for(RULES, tmp_path / "rules.yml", seconds=1)
    daemon = janus_lab.daemon.base.removeprefix("http://")
    am = alertmanager.url.removeprefix("http://")
    prometheus = await asyncio.to_thread(start_prometheus, tmp_path, daemon, rules, am)
    try:
        yield prometheus, alertmanager
    finally:
        prometheus.stop()
        alertmanager.stop()


async def query(prometheus: Service, expr: str) -> list[Any]:
    reply = await asyncio.to_thread(prometheus.get, "/api/v1/query", query=expr)
    assert reply["status"] == "success", reply
    return list(reply["data"]["result"])


async def alerts(alertmanager: Service) -> list[dict[str, str]]:
    reply = await asyncio.to_thread(alertmanager.get, "/api/v2/alerts")
    return [a["labels"] for a in reply]


async def test_panels_have_data_and_alerts_reach_alertmanager(
    janus_lab: JanusLab,
    publish: PublishFactory,
    subscribe: SubscribeFactory,
    stack: tuple[Service, Service],
) -> None:
    prometheus, alertmanager = stack
    over = await publish("over", room=CAPPED)
    uncapped = await publish("uncapped", room=OPEN)
    second = await publish("second", room=CAPPED)
    viewer = await subscribe([over.id], room=CAPPED)
    await viewer.handle.message({"request": "subscribe", "streams": [{"feed": second.id}]})
    dead = free_port()
    deadport = await publish(
        "deadport",
        offer_filter=lambda sdp: rewrite_candidates(sdp, lambda f: [*f[:5], str(dead), *f[6:]]),
        answer_filter=without_candidates,
        wait_webrtcup=False,
    )
    assert uncapped.video_track is not None
    uncapped.video_track.stop()  # its video stops arriving: receiving false

    async def fault_panels_filled() -> None:
        for expr in FAULT_ONLY:
            assert await query(prometheus, expr), f"{expr} not scraped yet"

    await janus_lab.eventually(fault_panels_filled, "the faults scraped", within=40.0)
    await asyncio.sleep(3)  # a few more scrapes for the rates

    empty = []
    for uid, title, expr in panel_queries():
        if uid in BROKER_ONLY:  # checked against a real fleet in test_fleet.py
            continue
        if not await query(prometheus, as_promql(expr)):
            empty.append(f"{uid} / {title}: {expr}")
    assert empty == []

    async def alerted(expected: set[tuple[str, str]]) -> None:
        got = {
            (a["alertname"], a.get("room") or a.get("server", ""))
            for a in await alerts(alertmanager)
        }
        assert expected <= got, got

    name = janus_lab.name
    await janus_lab.eventually(
        lambda: alerted({("JanusPublisherOverBitrate", str(CAPPED)),
                         ("JanusRoomWithoutBitrateCap", str(OPEN)),
                         ("JanusPublicIpMissing", name)}),
        "alerts at Alertmanager", within=30.0,
    )  # fmt: skip
    over_alerts = [
        a for a in await alerts(alertmanager) if a["alertname"] == "JanusPublisherOverBitrate"
    ]
    assert {(a["severity"], a["server"], a["room"]) for a in over_alerts} == {
        ("warning", name, str(CAPPED))
    }
    assert str(over.id) in {a["publisher"] for a in over_alerts}

    for participant in (viewer, over, second, uncapped, deadport):
        await participant.close()  # while Janus still answers their detach
    await asyncio.to_thread(janus_lab.process.stop)
    await janus_lab.eventually(lambda: alerted({("JanusDown", name)}), "JanusDown", within=30.0)
    down = next(a for a in await alerts(alertmanager) if a["alertname"] == "JanusDown")
    assert down["severity"] == "critical"
