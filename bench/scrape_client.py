"""``python -m bench.scrape_client URL SECONDS``: GET URL back to back for SECONDS, then print
each GET's wall time in ms as a JSON list.

``bench.scrape`` runs it as its own process, as Prometheus scrapes from elsewhere: reading
8.6 MB answers back to back in the process that times the webhook acks would delay those
acks in its own event loop, and the delay would be counted against the daemon.
"""

from __future__ import annotations

import sys
import time
import urllib.request

import orjson


def scrape(url: str, seconds: float) -> list[float]:
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as reply:
            reply.read()
            if reply.status != 200:
                raise RuntimeError(f"GET {url}: {reply.status}")
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str]) -> int:
    url, seconds = argv[0], float(argv[1])
    sys.stdout.buffer.write(orjson.dumps(scrape(url, seconds)) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
