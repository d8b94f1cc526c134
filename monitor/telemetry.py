"""The daemon's own counters and histograms: one home, written by producers, read by collectors.

Producers (receivers, the pipeline, the poller, the state) only add to plain dicts and
numbers here, which the webhook hot path can afford; the exposition layer (``monitor.metrics``)
turns them into metric families at scrape time. Nothing here imports prometheus_client.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

REJECT_REASONS = (
    "malformed_json",  # the body (or frame) is not JSON
    "bad_body",  # JSON, but not an object or an array
    "bad_compression",  # corrupt or truncated gzip/deflate
    "unsupported_encoding",  # a Content-Encoding other than gzip, deflate, identity
    "too_large",  # over webhook.max_body_bytes
    "decompressed_too_large",  # over webhook.max_decompressed_bytes once inflated
    "unauthorized",  # basic auth missing or wrong
    "invalid_event",  # one item of a batch is not a usable event
    "unknown_emitter_limit",  # too many emitters that are not configured targets
    "duplicate_batch",  # a body sampleevh resent within webhook.duplicate_window: not applied
    "internal_error",  # applying a valid event failed: a bug, logged with its traceback
)

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ADMIN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BUDGET_WINDOW = 60.0  # seconds over which poll_budget_used_ratio is computed


@dataclass(slots=True)
class Histogram:
    """A bare histogram: one list increment per observation, rendered at scrape time."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class PollStats:
    """One target's Admin API polling, as the poller reports it."""

    up: bool | None = None  # None until the first poll finished
    last_success: float | None = None  # wall clock
    poll_duration: Histogram = field(default_factory=lambda: Histogram(POLL_BUCKETS))
    request_duration: Histogram = field(default_factory=lambda: Histogram(ADMIN_BUCKETS))
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    busy: deque[tuple[float, float]] = field(default_factory=deque)  # (ended, duration)
    skipped: int = 0  # polls left out because the budget was spent

    def record(self, request: str, started: float, duration: float, error: str | None) -> None:
        self.requests[request] = self.requests.get(request, 0) + 1
        if error is not None:
            self.errors[request] = self.errors.get(request, 0) + 1
        self.request_duration.observe(duration)
        self.busy.append((started + duration, duration))

    def budget_used(self, now: float) -> float:
        """Share of the last minute with an Admin request outstanding."""
        horizon = now - BUDGET_WINDOW
        while self.busy and self.busy[0][0] < horizon:
            self.busy.popleft()
        busy = sum(min(duration, ended - horizon) for ended, duration in self.busy)
        return min(1.0, busy / BUDGET_WINDOW)


@dataclass(slots=True)
class Telemetry:
    """The daemon's own counters, kept as plain dicts and numbers."""

    events_received: dict[tuple[str, str], int] = field(default_factory=dict)
    events_rejected: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0)
    )
    events_unknown: dict[str, int] = field(default_factory=dict)
    event_lag: dict[str, Histogram] = field(default_factory=dict)
    webhook_requests: dict[tuple[str, int], int] = field(default_factory=dict)
    config_reload_ok: bool = False
    config_reload_time: float = 0.0
    polls: dict[str, PollStats] = field(default_factory=dict)
    state_dropped: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, reason)
    collector_failures: dict[str, int] = field(default_factory=dict)  # scrapes, by collector
    remediation: dict[tuple[str, str, str], int] = field(
        default_factory=dict
    )  # server, action, outcome

    def keep_only(self, servers: set[str]) -> None:
        """Forget the event counters of servers no longer tracked (an unknown emitter that went
        quiet), so their series vanish and emitter names cannot pile up."""
        for key in [k for k in self.events_received if k[0] not in servers]:
            del self.events_received[key]
        for name in [n for n in self.event_lag if n not in servers]:
            del self.event_lag[name]

    def poll(self, server: str) -> PollStats:
        stats = self.polls.get(server)
        if stats is None:
            stats = self.polls[server] = PollStats()
        return stats

    def reject(self, reason: str, n: int = 1) -> None:
        self.events_rejected[reason] = self.events_rejected.get(reason, 0) + n

    def request(self, transport: str, code: int) -> None:
        key = (transport, code)
        self.webhook_requests[key] = self.webhook_requests.get(key, 0) + 1

    def lag(self, server: str) -> Histogram:
        histogram = self.event_lag.get(server)
        if histogram is None:
            histogram = self.event_lag[server] = Histogram(LAG_BUCKETS)
        return histogram

    def dropped(self, kind: str, reason: str, n: int = 1) -> None:
        if n:
            key = (kind, reason)
            self.state_dropped[key] = self.state_dropped.get(key, 0) + n

    def remediated(self, server: str, action: str, outcome: str) -> None:
        key = (server, action, outcome)
        self.remediation[key] = self.remediation.get(key, 0) + 1

    def collector_failed(self, collector: str) -> None:
        self.collector_failures[collector] = self.collector_failures.get(collector, 0) + 1
