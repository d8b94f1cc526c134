"""monitor.logs: JSON and console lines carry the logger name and survive odd values."""

from __future__ import annotations

import io

import orjson
import pytest
import structlog

from tests.conftest import capture_daemon_logs


def _capture(monkeypatch: pytest.MonkeyPatch, fmt: str) -> io.BytesIO:
    return capture_daemon_logs(monkeypatch, "info", fmt)


def test_json_lines_name_their_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line from get_logger("monitor.poller") has "logger": "monitor.poller"."""
    raw = _capture(monkeypatch, "json")
    structlog.get_logger("monitor.poller").info("poll", server="janus-1", admin_secret="s3")
    structlog.get_logger().info("unnamed")
    first, second = (orjson.loads(line) for line in raw.getvalue().splitlines())
    assert (first["logger"], first["event"], first["server"]) == (
        "monitor.poller",
        "poll",
        "janus-1",
    )
    assert first["admin_secret"] == "<redacted>"
    assert second["logger"] == "monitor"


def test_console_lines_name_their_logger_and_survive_surrogates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Console lines show the logger, and a lone surrogate (a non-UTF-8 header byte) is
    escaped instead of raising."""
    raw = _capture(monkeypatch, "console")
    structlog.get_logger("monitor.ingest").warning("webhook_batch", encoding="\udcff")
    text = raw.getvalue().decode()
    assert "monitor.ingest" in text and "webhook_batch" in text
    assert "\\udcff" in text
