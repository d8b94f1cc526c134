"""The poller's budget: reconcile within the interval, requests within poll_budget, a slow
Janus asked less."""

from __future__ import annotations

from tests.conftest import FakeClock
from tests.fakes import FakeAdmin
from tests.test_poller import make_poller, run, server_of


async def test_every_session_is_confirmed_within_reconcile_interval(clock: FakeClock) -> None:
    """With 200 sessions, the rolling list_handles confirms each within reconcile_interval."""
    admin = FakeAdmin(clock, cost=0.0002)
    for session in range(1, 201):
        admin.add_handle(session, 1, {"plugin": "janus.plugin.echotest"})
    poller = make_poller(clock, admin, interval="1s", reconcile="10s")
    await run(poller, clock, 40)
    server = server_of(poller)
    ages = [clock.now - (s.listed_at or 0) for s in server.sessions.values()]
    assert max(ages) <= 10.0 + 1.0
    listed = [c for c in admin.calls[-2000:] if c[0] == "list_handles"]
    # Steady state: about 200 sessions per 10 s, not every session every poll.
    per_poll = len([c for c in admin.calls if c[0] == "list_handles"]) / 40
    assert per_poll < 60, per_poll
    assert listed


async def test_requests_stay_within_the_budget(clock: FakeClock) -> None:
    """Requests are paced so Janus is busy with ours at most poll_budget of the time."""
    admin = FakeAdmin(clock, cost=0.004)  # a slow Janus: 4 ms per request
    for session in range(1, 301):
        admin.add_handle(session, 1)
    poller = make_poller(clock, admin, budget="5%", interval="2s", reconcile="10s")
    start = clock.now
    await run(poller, clock, 30)
    elapsed = clock.now - start
    busy = len(admin.calls) * admin.cost
    assert busy / elapsed <= 0.05 * 1.1, busy / elapsed
    assert 0.03 <= poller.stats.budget_used(clock.now) <= 0.055
    assert sum(poller.stats.requests.values()) == len(admin.calls)


async def test_a_slow_janus_is_asked_less(clock: FakeClock) -> None:
    """Ten times slower requests mean about ten times fewer of them."""
    counts = []
    for cost in (0.001, 0.01):
        clock.now = 1000.0
        admin = FakeAdmin(clock, cost=cost)
        for session in range(1, 2001):
            admin.add_handle(session, 1)
        poller = make_poller(clock, admin, interval="5s", reconcile="30s")
        await run(poller, clock, 6)
        counts.append(len(admin.calls))
    assert counts[0] > 5 * counts[1], counts


async def test_janus_down_is_reported_and_state_is_kept(clock: FakeClock) -> None:
    """When the Admin API stops answering, up goes 0, state stays, and the next poll recovers."""
    admin = FakeAdmin(clock)
    admin.add_handle(1, 2)
    poller = make_poller(clock, admin, interval="1s")
    await run(poller, clock, 2)
    admin.down = True
    await run(poller, clock, 1)
    assert poller.stats.up is False
    assert 1 in server_of(poller).sessions
    assert poller.stats.last_success == 1.8e9
    admin.down = False
    await run(poller, clock, 1)
    assert poller.stats.up is True
