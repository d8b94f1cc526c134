"""/metrics as text, paced: the Prometheus text format (0.0.4) byte for byte as
prometheus_client's ``generate_latest`` writes it, without holding the loop for a scrape.

Rows of ``RowGauge``/``RowCounter`` are written from one %-template per family (label names
sorted, as generate_latest sorts them); other families (histograms, single values) go
through their Samples. Builders and rows are walked under a ``Pacer``: every slice of loop
time, ingest gets the loop back (see monitor.pacing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from monitor.metrics.family import (
    PACE,
    PAUSE,
    Collector,
    Pause,
    RowCounter,
    RowGauge,
    escape_value,
    go_float,
)
from monitor.pacing import Pacer

_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary",
          "unknown": "untyped", "info": "gauge", "stateset": "gauge",
          "gaugehistogram": "histogram"}  # fmt: skip


_NEEDS_ESCAPE = re.compile(r'[\\"\n]')


def _head(metric: Metric) -> tuple[str, str]:
    name = metric.name + "_total" if metric.type == "counter" else metric.name
    if metric.type == "info":
        name = metric.name + "_info"
    documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return name, f"# HELP {name} {documentation}\n# TYPE {name} {_TYPES[metric.type]}\n"


def _sample_line(sample: Sample) -> str:
    labels = ""
    if sample.labels:
        labels = "{" + ",".join(
            f'{k}="{escape_value(v)}"' for k, v in sorted(sample.labels.items())
        ) + "}"  # fmt: skip
    stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    return f"{sample.name}{labels} {go_float(sample.value)}{stamp}\n"


def _rows(metric: RowGauge | RowCounter, name: str, out: list[str]) -> Iterator[Pause]:
    yield from _label_rows(metric, name, out)
    lines, step = metric.lines, PACE * 64
    for start in range(0, len(lines), step):
        out.extend(lines[start : start + step])
        yield PAUSE
    while lines:
        del lines[-step:]
        yield PAUSE


def _label_rows(metric: RowGauge | RowCounter, name: str, out: list[str]) -> Iterator[Pause]:
    names = metric._labelnames
    order = sorted(range(len(names)), key=names.__getitem__)
    if not names:
        for (value,) in metric.rows:
            out.append(f"{name} {go_float(value)}\n")
        return
    template = (
        name.replace("%", "%%") + "{" + ",".join(f'{names[i]}="%s"' for i in order) + "} %s\n"
    )
    # Label values in name order, as a tuple even for one label.
    ordered = itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
    rows = metric.rows
    for start in range(0, len(rows), PACE * 16):
        chunk = [ordered(row) for row in rows[start : start + PACE * 16]]
        # Escaping is rare (ids, names and kinds): one scan of the chunk's values decides.
        if _NEEDS_ESCAPE.search("".join(["".join(labels) for labels in chunk])):
            chunk = [tuple(escape_value(v) for v in labels) for labels in chunk]
        values = [row[-1] for row in rows[start : start + PACE * 16]]
        out.extend([template % (*labels, go_float(value))
                    for labels, value in zip(chunk, values, strict=True)])  # fmt: skip
        yield PAUSE
    # Freed a slice at a time too: 20 k rows dropped at once are milliseconds of deallocation.
    while rows:
        del rows[-PACE * 16 :]
        yield PAUSE


def _family(metric: Metric, out: list[str]) -> Iterator[Pause]:
    name, head = _head(metric)
    out.append(head)
    if isinstance(metric, RowGauge | RowCounter):
        yield from _rows(metric, name, out)
        return
    deferred: dict[str, list[str]] = {}  # OpenMetrics-only samples, as gauges at the end
    for sample in metric.samples:
        for suffix in ("_created", "_gsum", "_gcount"):
            if sample.name == metric.name + suffix:
                deferred.setdefault(suffix, []).append(_sample_line(sample))
                break
        else:
            out.append(_sample_line(sample))
    documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    for suffix, lines in sorted(deferred.items()):
        out.append(f"# HELP {metric.name}{suffix} {documentation}\n")
        out.append(f"# TYPE {metric.name}{suffix} gauge\n")
        out.extend(lines)


async def render(collectors: Sequence[Collector], pacer: Pacer | None = None) -> bytes:
    """Every collector's families as text, yielding to the loop between slices."""
    return b"".join(await render_chunks(collectors, pacer))


async def render_chunks(collectors: Sequence[Collector], pacer: Pacer | None = None) -> list[bytes]:
    """``render``'s text in the pieces it was made in: the caller sends them one by one (one
    join of 8 MB is itself 10 ms of loop time, and one write of it 15)."""
    pacer = pacer or Pacer()
    out: list[str] = []
    chunks: list[bytes] = []  # encoded as it goes: one join of 8 MB is itself 10 ms
    for collector in collectors:
        for build in collector.builders():
            families: list[Metric] = []
            try:
                for item in build():
                    if item is PAUSE:
                        await pacer.pause()
                    else:
                        families.append(item)  # type: ignore[arg-type]
            except Exception:  # one broken family must not take /metrics down
                collector.failed(build)
                continue
            for family in families:
                for _ in _family(family, out):
                    chunks.append("".join(out).encode())
                    out.clear()
                    await pacer.pause()
                chunks.append("".join(out).encode())
                out.clear()
    return chunks


def render_now(collectors: Iterable[Collector]) -> bytes:
    """The same text without pacing, for callers off the loop (tests, doctor)."""
    out: list[str] = []
    for collector in collectors:
        for family in collector.collect():
            for _ in _family(family, out):
                pass
    return "".join(out).encode()
