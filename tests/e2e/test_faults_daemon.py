"""Faults on the daemon's side of a real Janus 1.1.2: a target configured with the wrong
admin_secret (then fixed by a reload), and the daemon restarted in the middle of a call with
remediation enforcing a room cap.

The daemons here are started in the test, after Janus, so nothing they log or decide is missed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import lab.janus
from lab.janus import JanusLabConfig, JanusProcess, LabRoom, free_port
from monitor.config import load_config
from tests.conftest import Daemon, capture_daemon_logs, log_lines, run_daemon, sample
from tests.e2e.conftest import WEBHOOK_PATH
from tests.janus_lab import Serving

pytestmark = pytest.mark.e2e

WRONG_SECRET = "e2e-wr0ng-admin-secret-4a1c"
CAPPED = 2001  # 128 kbps: an aiortc VP8 publisher (about 250 kbps at least) stays over it


def target(cfg: JanusLabConfig, **settings: Any) -> dict[str, Any]:
    return {
        "name": cfg.server_name, "admin_url": cfg.admin_url, "admin_secret": cfg.admin_secret,
        "janus_url": cfg.janus_url, "poll_interval": "1s", "reconcile_interval": "3s",
        **settings,
    }  # fmt: skip


@pytest.fixture
async def janus(
    janus_binary: str, janus_config: JanusLabConfig, tmp_path: Path
) -> AsyncIterator[JanusProcess]:
    """A Janus on free ports with the capped room, sampleevh POSTing to ``janus.cfg``'s
    evh_backend (a fixed port the test's daemons listen on)."""
    cfg = dataclasses.replace(
        janus_config,
        evh_backend=f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}",
        rooms=(LabRoom(1234), LabRoom(CAPPED, bitrate=128_000)),
    )
    lab.janus.write_janus_config(tmp_path / "janus-conf", cfg)
    process = JanusProcess(cfg, binary=janus_binary)
    await asyncio.to_thread(process.start, tmp_path / "janus-conf", tmp_path / "janus.log")
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


async def until(check: Any, what: str, within: float = 20.0) -> float:
    """Wait for a predicate (plain or async); returns how long it took."""
    started = time.monotonic()
    while not await _holds(check):
        assert time.monotonic() - started < within, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _holds(check: Any) -> bool:
    result = check()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


# --- the wrong admin_secret -------------------------------------------------------------------


def named(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [
        line for line in lines
        if line["event"] == event and line.get("logger") == "monitor.poller"
    ]  # fmt: skip


def more_polls(raw: Any, count: int) -> Any:
    """A predicate: ``count`` more poll lines than now."""
    then = len(named(log_lines(raw), "poll"))
    return lambda: len(named(log_lines(raw), "poll")) >= then + count


async def reload(daemon: Daemon, path: Path, config: dict[str, Any]) -> None:
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config, sort_keys=False))
    async with daemon.http.post(daemon.url("/-/reload")) as response:
        assert response.status == 200, await response.text()


async def test_a_wrong_admin_secret_is_down_and_logged_once_per_change(
    janus: JanusProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a wrong admin_secret Janus refuses list_sessions (403): janus_up 0, one
    target_down line over many failed polls (a reload that restarts the poller with the secret
    still wrong adds none); a reload with the right secret: janus_up 1 and one target_up."""
    cfg = janus.cfg
    raw = capture_daemon_logs(monkeypatch, "debug")
    settings = {
        "log": {"level": "debug", "format": "json"},
        "webhook": {"path": WEBHOOK_PATH},
        "targets": [target(cfg, admin_secret=WRONG_SECRET)],
        "remediation": {"mode": "off", "audit_log": str(tmp_path / "actions.jsonl")},
    }
    path = tmp_path / "janus-monitor.yml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    name = cfg.server_name
    async for daemon in run_daemon(load_config(path), path):

        async def polled(count: int, up: int, daemon: Daemon = daemon) -> bool:
            samples = await daemon.metrics()
            polls = sample(samples, "janus_monitor_poll_duration_seconds_count", server=name)
            return sample(samples, "janus_up", server=name) == up and (polls or 0) >= count

        await until(lambda: polled(5, 0), "five refused polls")
        refused = sample(
            await daemon.metrics(), "janus_monitor_poll_errors_total", server=name,
            request="list_sessions",
        )  # fmt: skip
        assert refused is not None and refused >= 5
        down = named(log_lines(raw), "target_down")
        assert len(down) == 1, down
        assert "403" in down[0]["error"] or "nauthorized" in down[0]["error"], down[0]
        assert named(log_lines(raw), "target_up") == []
        failed = [p for p in named(log_lines(raw), "poll") if p["up"] is False]
        assert len(failed) >= 5 and {p["level"] for p in failed} == {"debug"}

        # Another setting changes and the poller restarts: still down, nothing new to say.
        settings["targets"] = [target(cfg, admin_secret=WRONG_SECRET, poll_budget="6%")]
        await reload(daemon, path, settings)
        await until(more_polls(raw, 3), "three more refused polls")
        assert len(named(log_lines(raw), "target_down")) == 1

        settings["targets"] = [target(cfg)]
        await reload(daemon, path, settings)
        took = await until(lambda: polled(0, 1), "janus_up 1 after the fixing reload")
        await until(more_polls(raw, 3), "three more good polls")
    lines = log_lines(raw)
    assert len(named(lines, "target_down")) == 1
    (recovered,) = named(lines, "target_up")
    assert recovered["server"] == name
    assert [line["event"] for line in lines].count("config_reloaded") == 2
    text = raw.getvalue().decode()
    assert WRONG_SECRET not in text and cfg.admin_secret not in text
    print(
        f"wrong admin_secret: {len(failed)}+ refused polls, {refused:g} list_sessions errors, "
        f"1 target_down line; fixed by reload: janus_up 1 in {took:.2f} s, 1 target_up line",
        file=sys.stderr,  # stdout is the captured log
    )


# --- the daemon restarted mid-call ------------------------------------------------------------


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


async def test_a_restarted_daemon_rebuilds_from_polls_and_acts_only_on_fresh_data(
    janus: JanusProcess, tmp_path: Path
) -> None:
    """A publisher over its room's cap is capped by one daemon, which then stops; a new one on
    the same port and audit log rebuilds sessions, handles and the publisher from polls within
    one reconcile_interval's polls, keeps the earlier audit lines intact, and decides again only
    after its own measurements have been over the cap for `sustain`."""
    from lab.webrtc import Publisher

    cfg = janus.cfg
    name = cfg.server_name
    audit = tmp_path / "actions.jsonl"
    config = load_config_text({
        "webhook": {"path": WEBHOOK_PATH},
        "targets": [target(cfg)],
        "remediation": {
            "mode": "enforce", "audit_log": str(audit),
            "over_bitrate": {"sustain": "2s", "steps": ["cap_bitrate"], "step_interval": "3s"},
        },
    }, tmp_path)  # fmt: skip
    port = int(str(cfg.evh_backend).split(":")[2].split("/")[0])
    reconcile = config.targets[0].reconcile_interval
    first = await Serving.start(config, port)
    publisher = Publisher(cfg.janus_url, CAPPED, "over", opaque_id="e2e-over")
    second: Serving | None = None
    try:
        await publisher.start()
        await until(lambda: capped(audit, publisher), "the first daemon's cap_bitrate", 30)
        await first.stop()
        before = audit.read_bytes()
        restarted_wall, restarted = time.time(), time.monotonic()
        second = await Serving.start(config, port)
        runtime = second.daemon.runtime
        measured: list[float] = []  # wall times of the new daemon's over-cap measurements
        bitrate = runtime.signals.bitrate
        update = bitrate.update

        def spy(server: Any, key: tuple[int, int], stats: Any, now: float) -> None:
            update(server, key, stats, now)
            media = bitrate.of(server, key)
            if media is not None and (media.total_bitrate() or 0) > 128_000 * 1.25:
                measured.append(time.time())

        runtime.signals.bitrate.update = spy  # type: ignore[method-assign]

        async def rebuilt() -> bool:
            server = runtime.state.servers.get(name)
            if server is None or len(server.sessions) != 1 or server.handle_count != 1:
                return False
            owned = server.publishers.get((str(CAPPED), str(publisher.id)))
            handle = server.handle(owned.handle) if owned and owned.handle else None
            return handle is not None and handle.role == "publisher" and owned.display == "over"

        took = await until(rebuilt, "state rebuilt from polls", within=4 * reconcile + 10)
        polls = sample(
            await second.daemon.metrics(), "janus_monitor_poll_duration_seconds_count", server=name
        )
        await until(lambda: capped(audit, publisher, since=restarted_wall), "a fresh decision", 30)
        acted = time.monotonic() - restarted
    finally:
        await publisher.close()
        if second is not None:
            await second.stop()
        else:
            await first.stop()
    assert polls is not None and polls <= reconcile / config.targets[0].poll_interval + 1, polls
    after = audit.read_bytes()
    assert after.startswith(before), "the earlier audit lines changed"
    lines = audit_lines(audit)  # every line, old and new, is whole JSON
    old = [e for e in lines if e["time"] < restarted_wall]
    new = [e for e in lines if e["time"] >= restarted_wall]
    assert old and old == audit_lines_of(before)
    fresh = new[0]
    assert (fresh["step"], fresh["outcome"]) == ("cap_bitrate", "applied")
    assert measured, "the new daemon took no over-cap measurement"
    # Fresh data: the publisher known from polls, then measurements by this daemon over the cap
    # continuously for `sustain` (2 s) before the decision; nothing the old daemon knew counts.
    assert fresh["time"] >= measured[0] + 2.0 - 0.05, (fresh["time"], measured[0])
    assert fresh["measured_bps"] > 128_000 * 1.25
    print(
        f"daemon restart: state rebuilt in {took:.2f} s ({polls:g} polls; reconcile_interval "
        f"{reconcile:g} s); first over-cap measurement {measured[0] - restarted_wall:.2f} s after "
        f"the restart, decision {acted:.2f} s after it; {len(old)} earlier audit line(s) intact"
    )


def load_config_text(config: dict[str, Any], tmp_path: Path) -> Any:
    path = tmp_path / "janus-monitor.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_config(path)


def audit_lines_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines()]


def capped(audit: Path, publisher: Any, since: float = 0.0) -> bool:
    if not audit.exists():
        return False
    return any(
        e["publisher"] == str(publisher.id) and e["step"] == "cap_bitrate"
        and e["outcome"] == "applied" and e["time"] >= since
        for e in audit_lines(audit)
    )  # fmt: skip
