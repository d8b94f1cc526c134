"""``bench.ingest``'s figures: one Sample per measured window, medians over runs, the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.ingest_bodies import EVENTS_PER_BODY


@dataclass(frozen=True)
class Sample:
    events_per_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None  # server CPU time per request
    cpu_share: float | None  # server CPU seconds per wall second
    errors: int | None = None  # non-2xx replies, for a receiver measured with count_errors


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(share * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summarize(samples: Sequence[Sample]) -> Sample:
    errors = _median([s.errors for s in samples])
    return Sample(
        events_per_s=statistics.median(s.events_per_s for s in samples),
        requests=round(statistics.median(s.requests for s in samples)),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        cpu_us_per_request=_median([s.cpu_us_per_request for s in samples]),
        cpu_share=_median([s.cpu_share for s in samples]),
        errors=None if errors is None else round(errors),
    )


def table(rows: Sequence[tuple[str, str, Sample | float]]) -> list[str]:
    header: tuple[str, ...] = (
        "receiver", "mode", "events/s", "req/s", "p50 ms", "p99 ms", "srv CPU", "us/req",
    )  # fmt: skip
    # The errors column appears only when a receiver was measured counting its error replies,
    # so the daemon-only table reads as it always did.
    counted = any(isinstance(value, Sample) and value.errors is not None for _, _, value in rows)
    if counted:
        header += ("non-2xx",)
    lines: list[tuple[str, ...]] = [header]
    for receiver, mode, value in rows:
        if isinstance(value, Sample):
            line: tuple[str, ...] = (
                receiver,
                mode,
                f"{value.events_per_s:,.0f}",
                f"{value.events_per_s / EVENTS_PER_BODY:,.0f}",
                f"{value.p50_ms:.3f}",
                f"{value.p99_ms:.3f}",
                _fmt(None if value.cpu_share is None else value.cpu_share * 100, ".0f") + "%",
                _fmt(value.cpu_us_per_request, ",.0f"),
            )
            if counted:
                line += (
                    _fmt(value.errors, ",d")
                    + (f"/{value.requests:,d}" if value.errors is not None else ""),
                )
        else:
            per_body = EVENTS_PER_BODY / value * 1e6
            line = (receiver, mode, f"{value:,.0f}", "-", "-", "-", "-", f"{per_body:,.1f}")
            if counted:
                line += ("-",)
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def versus(mode: str, ours: Sample, label: str, theirs: Sample) -> str:
    """The verdict line of the daemon against another exporter: ahead means more events/s.
    Their events/s counts every body they answered, error replies included, so the ratio
    never flatters the daemon."""
    ratio = ours.events_per_s / theirs.events_per_s
    verdict = "ahead" if ratio > 1 else "NOT ahead"
    errors = (
        ""
        if theirs.errors is None
        else f"; {theirs.errors:,d} of its {theirs.requests:,d} replies non-2xx"
    )
    return (
        f"{mode}: daemon {ours.events_per_s:,.0f} ev/s / {label} {theirs.events_per_s:,.0f} "
        f"ev/s = {ratio:.2f}x: {verdict}{errors}"
    )
