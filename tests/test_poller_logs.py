"""The poller's log lines: one per poll at info only when it did something, a target going
down or up logged once per change, and a target whose Janus calls itself otherwise."""

from __future__ import annotations

from prometheus_client import generate_latest
from structlog.testing import capture_logs

from monitor.metrics import build_registry, collectors
from monitor.polling.poller import Poller
from monitor.telemetry import Telemetry
from tests.conftest import FakeClock, metric_samples, sample
from tests.fakes import FakeAdmin, fake_sleep
from tests.test_poller import make_poller, run


def levels(logs: list[dict[str, object]], event: str) -> list[object]:
    return [entry["log_level"] for entry in logs if entry["event"] == event]


async def test_idle_polls_are_debug_and_changes_are_logged_once(clock: FakeClock) -> None:
    """Idle polls log at debug; Janus going down is one warning however many polls fail, and
    coming back is one info line."""
    admin = FakeAdmin(clock)
    poller = make_poller(clock, admin)
    with capture_logs() as logs:
        await run(poller, clock, 3)
        admin.down = True
        await run(poller, clock, 4)
        admin.down = False
        await run(poller, clock, 2)
    assert levels(logs, "target_up") == ["info", "info"]  # the first poll, and the recovery
    assert levels(logs, "target_down") == ["warning"]
    assert set(levels(logs, "poll")) == {"debug"}


async def test_a_janus_with_another_server_name_is_reported_once(clock: FakeClock) -> None:
    """info's server-name MyJanusInstance for target janus-lab-1: one warning with the fix."""
    admin = FakeAdmin(clock)
    admin.info_reply = {**admin.info_reply, "server-name": "MyJanusInstance"}
    poller = make_poller(clock, admin)
    with capture_logs() as logs:
        await run(poller, clock, 3)
    (warning,) = [e for e in logs if e["event"] == "target_identity_mismatch"]
    assert warning["server_name"] == "MyJanusInstance"
    assert 'server_name = "janus-lab-1"' in str(warning["fix"])
    registry = build_registry(collectors(poller.state, Telemetry(), lambda: True))
    samples = metric_samples(generate_latest(registry).decode())
    mismatch = {"server": "janus-lab-1", "server_name": "MyJanusInstance"}
    assert sample(samples, "janus_monitor_identity_mismatch", **mismatch) == 1


async def test_a_poller_restarted_by_a_reload_does_not_announce_a_change_that_did_not_happen(
    clock: FakeClock,
) -> None:
    """A new poller on the same target stats (a reload changed its settings) says nothing while
    the target stays down, and says target_up once it comes back."""
    admin = FakeAdmin(clock)
    admin.down = True
    poller = make_poller(clock, admin)
    with capture_logs() as logs:
        await run(poller, clock, 2)
        restarted = Poller(poller.target, admin, poller.state, poller.stats, clock=clock,
                           wall=lambda: 1.8e9, sleep=fake_sleep(clock))  # type: ignore[arg-type]  # fmt: skip
        await run(restarted, clock, 2)
        admin.down = False
        await run(restarted, clock, 2)
    assert levels(logs, "target_down") == ["warning"]
    assert levels(logs, "target_up") == ["info"]
