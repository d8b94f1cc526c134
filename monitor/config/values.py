"""The values config is made of: secrets, durations, shares, and the checks on them."""

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """An invalid configuration; ``str()`` is the one-line message shown to the user."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class Secret:
    """A string that never shows itself in repr, str, logs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, so a wrong guess takes as long as a near miss."""
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        # bytes: compare_digest refuses str with non-ASCII characters
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('<redacted>')" if self._value else "Secret('')"

    __str__ = __repr__


# --- value kinds (used as Annotated metadata) -------------------------------------------


@dataclass(frozen=True)
class Kind:
    """Marks a field whose YAML value needs a dedicated parser (duration, share...)."""

    name: str
    parse: Callable[[Any], Any]


@dataclass(frozen=True)
class Check:
    """A constraint on an already-parsed value; ``message`` says what is expected.

    ``show`` False keeps the offending value out of the message (a URL may carry a password).
    """

    ok: Callable[[Any], bool]
    message: str
    show: bool = True


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """'500ms', '10s', '1.5m', '1h', '1m30s' -> seconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a duration string with a unit: ms, s, m or h (e.g. '10s')")
    text = value.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use ms, s, m or h (e.g. '10s', '1m30s')")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("invalid duration '': use ms, s, m or h (e.g. '10s')")
    return total


def parse_share(value: Any) -> float:
    """'5%' or 0.05 -> 0.05."""
    if isinstance(value, bool):
        raise ValueError("must be a percentage ('5%') or a fraction (0.05)")
    try:
        if isinstance(value, str) and value.strip().endswith("%"):
            share = float(value.strip()[:-1]) / 100.0
        else:
            share = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"invalid share {brief(value)}: use a percentage ('5%') or a fraction (0.05)"
        ) from None
    if not 0.0 < share <= 1.0:
        raise ValueError(f"must be above 0% and at most 100%, got {brief(value)}")
    return share


Duration = Annotated[float, Kind("duration", parse_duration)]
Share = Annotated[float, Kind("share", parse_share)]


def at_least(minimum: float) -> Check:
    return Check(lambda v: v >= minimum, f"must be at least {minimum:g}")


def positive() -> Check:
    return Check(lambda v: v > 0, "must be greater than 0")


def one_of(*choices: str) -> Check:
    return Check(lambda v: v in choices, "must be one of: " + ", ".join(choices))


def valid_listen(value: str) -> bool:
    try:
        split_host_port(value)
    except ValueError:
        return False
    return True


def split_host_port(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9720' or '[::1]:9720' -> (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdecimal() or len(port_text) > 5:
        raise ValueError(listen)
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not 0 < port < 65536:
        raise ValueError(listen)
    return host, port


def valid_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.password
    except ValueError:  # e.g. an unclosed [ipv6 literal
        return False


def valid_amqp_url(value: str) -> bool:
    """amqp:// or amqps://, with a host; user and password are allowed (they are secrets)."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("amqp", "amqps") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed [ipv6 literal, a port that is not a number
        return False


def redact_url(value: str) -> str:
    """The URL with its password replaced, for logs, the API and check-config."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    host = f"[{host}]" if ":" in host else host
    user = (
        f"{parts.username}:***@"
        if parts.password
        else f"{parts.username}@"
        if parts.username
        else ""
    )
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def valid_exchange_name(value: str) -> bool:
    """AMQP short strings: at most 255 bytes; the shard queues add their suffix to it."""
    return 0 < len(value.encode()) <= 200 and value.isprintable() and not value.startswith("amq.")


def valid_regex(value: str | None) -> bool:
    if value is None:
        return True
    try:
        re.compile(value)
    except re.error:
        return False
    return True


HTTP_URL = Check(
    lambda v: v is None or valid_http_url(v),
    "must be an http(s) URL without a user or password",
    show=False,
)

_RESERVED_PATHS = ("/metrics", "/api", "/-")


def valid_webhook_path(path: str) -> bool:
    if not path.startswith("/") or path == "/" or any(c.isspace() for c in path):
        return False
    return not any(path == p or path.startswith(p + "/") for p in _RESERVED_PATHS)


MAX_SERVER_NAME = 128


def valid_server_name(name: str) -> bool:
    """A target name, which is also the rule for the emitter of every event accepted."""
    return 0 < len(name) <= MAX_SERVER_NAME and name.isprintable()


def brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
