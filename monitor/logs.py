"""structlog setup: JSON lines when stdout is not a TTY, console otherwise; secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip
_SECRET_WORDS = ("secret", "password", "passwd", "pwd", "authorization", "token", "admin_key")


_secret_key: dict[str, bool] = {}  # key -> whether it names a secret; log keys are few


def _names_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_secrets(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Last line of defence: a key that names a secret never has its value logged."""
    for key in event:
        secret = _secret_key.get(key)
        if secret is None:
            secret = _secret_key[key] = _names_secret(key)
        if secret:
            event[key] = "<redacted>"
    return event


def _json_bytes(obj: Any, default: Any = None) -> bytes:
    try:
        return orjson.dumps(obj, default=str)
    except (orjson.JSONEncodeError, TypeError):
        # A value orjson refuses: a str with lone surrogates (a non-UTF-8 header byte comes
        # out of aiohttp as one), an int beyond 64 bits, a non-str key. A log line must never
        # fail the request that logs it.
        return orjson.dumps(loggable(obj), default=str)


def loggable(value: Any, depth: int = 0) -> Any:
    """``value`` with what JSON cannot hold made printable: surrogates escaped (\\udcff),
    big integers and non-str keys as text, nesting past 32 levels cut."""
    if type(value) is str:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if type(value) is int:
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth > 32:
        return "..."
    if isinstance(value, dict):
        return {str(loggable(k, depth + 1)): loggable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [loggable(v, depth + 1) for v in value]
    if isinstance(value, (bool, float)) or value is None:
        return value
    try:
        return loggable(str(value), depth + 1)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


_threshold = logging.INFO
DEFAULT_LOGGER = "monitor"


class _NamedBytesLogger(structlog.BytesLogger):
    """A BytesLogger that knows the name it was asked for (``get_logger(name)``)."""

    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLogger(structlog.PrintLogger):
    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


def add_logger_name(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Every line says which part of the daemon wrote it: ``"logger": "monitor.poller"``."""
    event.setdefault("logger", getattr(logger, "name", DEFAULT_LOGGER))
    return event


def enabled(level: str) -> bool:
    """Whether a level is logged now: lets the hot path skip building a log call at all."""
    return _LEVELS[level] >= _threshold


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    global _threshold
    _threshold = _LEVELS.get(level, logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_bytes)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    # JSON lines go out as the bytes orjson made, without a round trip through str.
    out = sys.stdout
    if use_json and hasattr(out, "buffer"):

        def factory(*args: Any) -> Any:
            return _NamedBytesLogger(out.buffer, args[0] if args else DEFAULT_LOGGER)
    else:

        def factory(*args: Any) -> Any:
            return _NamedPrintLogger(out, args[0] if args else DEFAULT_LOGGER)

    if not use_json and hasattr(sys.stdout, "reconfigure"):
        # Console lines are text: a lone surrogate in a logged header must not raise.
        sys.stdout.reconfigure(errors="backslashreplace")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
