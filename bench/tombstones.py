"""``python -m bench.tombstones``: the cost of a sweep over destroyed-id tombstones, as a
1 M-event replay at 20 k events/s leaves them (about 116 k per kind within stale_after),
with the whole-dict scan it replaced as the reference, in the same run."""

from __future__ import annotations

import time

from monitor.state.model import expire_gone, remember_gone

KEPT = 116_000
EXPIRING = 2_000  # what one 15 s sweep drops at that rate, per kind, roughly


def filled() -> dict[int, float]:
    gone: dict[int, float] = {}
    for key in range(KEPT + EXPIRING):
        remember_gone(gone, key, float(key), bound=10**9)
    return gone


def scan(gone: dict[int, float], horizon: float) -> None:
    for key in [k for k, t in gone.items() if t < horizon]:
        del gone[key]


def best_ms(sweep: object, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        gone = filled()
        started = time.perf_counter()
        sweep(gone, float(EXPIRING))  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
        assert len(gone) == KEPT
    return best * 1000


def main() -> int:
    old, new = best_ms(scan), best_ms(expire_gone)
    print(f"sweep of {KEPT + EXPIRING:,} tombstones, {EXPIRING:,} expiring (best of 7):")
    print(f"  whole-dict scan (before): {old:7.3f} ms per kind")
    print(f"  ordered expiry (now):     {new:7.3f} ms per kind ({old / new:.0f}x less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
