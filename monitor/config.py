"""Typed, frozen configuration loaded from YAML (the contract is SPEC.md "Configuration").

The loader is driven by the dataclass annotations below: every key a user may write is a field,
so an unknown key is always an error, and every error names the key path it came from.
"""

import dataclasses
import difflib
import hmac
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml

ACTION_NAMES = ("cap_bitrate", "kick")
"""Remediation steps the config may name; the remediation registry will own this list."""


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
class _Kind:
    """Marks a field whose YAML value needs a dedicated parser (duration, share...)."""

    name: str
    parse: Callable[[Any], Any]


@dataclass(frozen=True)
class _Check:
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
            f"invalid share {_show(value)}: use a percentage ('5%') or a fraction (0.05)"
        ) from None
    if not 0.0 < share <= 1.0:
        raise ValueError(f"must be above 0% and at most 100%, got {_show(value)}")
    return share


Duration = Annotated[float, _Kind("duration", parse_duration)]
Share = Annotated[float, _Kind("share", parse_share)]


def _at_least(minimum: float) -> _Check:
    return _Check(lambda v: v >= minimum, f"must be at least {minimum:g}")


def _positive() -> _Check:
    return _Check(lambda v: v > 0, "must be greater than 0")


def _one_of(*choices: str) -> _Check:
    return _Check(lambda v: v in choices, "must be one of: " + ", ".join(choices))


def _valid_listen(value: str) -> bool:
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


def _valid_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.password
    except ValueError:  # e.g. an unclosed [ipv6 literal
        return False


def _valid_regex(value: str | None) -> bool:
    if value is None:
        return True
    try:
        re.compile(value)
    except re.error:
        return False
    return True


_HTTP_URL = _Check(
    lambda v: v is None or _valid_http_url(v),
    "must be an http(s) URL without a user or password",
    show=False,
)

_RESERVED_PATHS = ("/metrics", "/api", "/-")


def _valid_webhook_path(path: str) -> bool:
    if not path.startswith("/") or path == "/" or any(c.isspace() for c in path):
        return False
    return not any(path == p or path.startswith(p + "/") for p in _RESERVED_PATHS)


MAX_SERVER_NAME = 128


def valid_server_name(name: str) -> bool:
    """A target name, which is also the rule for the emitter of every event accepted."""
    return 0 < len(name) <= MAX_SERVER_NAME and name.isprintable()


# --- the configuration itself -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Annotated[str, _one_of("debug", "info", "warning", "error")] = "info"
    format: Annotated[str, _one_of("json", "console", "auto")] = "auto"


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: Annotated[str, _Check(bool, "must not be empty")]
    password: Annotated[Secret, _Check(bool, "must not be empty")]


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    path: Annotated[
        str,
        _Check(
            _valid_webhook_path,
            "must be an absolute path such as /events, not /, /metrics, /api/... or /-/...",
        ),
    ] = "/events"
    basic_auth: BasicAuth | None = None
    max_body_bytes: Annotated[int, _at_least(1024)] = 8 * 1024 * 1024
    max_decompressed_bytes: Annotated[int, _at_least(1024)] = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TargetConfig:
    name: Annotated[str, _Check(valid_server_name, "must be 1 to 128 printable characters")]
    admin_url: Annotated[str | None, _HTTP_URL] = None
    admin_secret: Secret = field(default_factory=Secret)
    janus_url: Annotated[str | None, _HTTP_URL] = None
    api_secret: Secret = field(default_factory=Secret)
    poll_interval: Annotated[Duration, _Check(lambda v: v >= 0.1, "must be at least 100ms")] = 5.0
    poll_budget: Share = 0.05
    reconcile_interval: Annotated[Duration, _Check(lambda v: v >= 1.0, "must be at least 1s")] = (
        30.0
    )
    room_secrets: Mapping[str, Secret] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class SignalsConfig:
    setup_timeout: Annotated[Duration, _positive()] = 20.0
    expose_display: bool = True


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_tracked_handles: Annotated[int, _at_least(1)] = 50000
    max_tracked_rooms: Annotated[int, _at_least(1)] = 20000
    max_tracked_publishers: Annotated[int, _at_least(1)] = 50000
    stale_after: Annotated[Duration, _Check(lambda v: v >= 1.0, "must be at least 1s")] = 60.0
    max_unknown_emitters: Annotated[int, _at_least(0)] = 16


@dataclass(frozen=True, slots=True)
class OverBitrateConfig:
    tolerance: Annotated[float, _at_least(1.0)] = 1.25
    sustain: Annotated[Duration, _at_least(0)] = 10.0
    steps: tuple[Annotated[str, _one_of(*ACTION_NAMES)], ...] = ACTION_NAMES
    step_interval: Annotated[Duration, _positive()] = 10.0
    exempt_rooms: tuple[str, ...] = ()
    exempt_display_regex: Annotated[
        str | None, _Check(_valid_regex, "must be a valid regular expression")
    ] = None
    default_cap: Annotated[int, _at_least(0)] = 0


@dataclass(frozen=True, slots=True)
class RemediationConfig:
    mode: Annotated[str, _one_of("off", "dry_run", "enforce")] = "dry_run"
    max_actions_per_minute: Annotated[int, _at_least(0)] = 20
    over_bitrate: OverBitrateConfig = field(default_factory=OverBitrateConfig)
    audit_log: Annotated[str, _Check(bool, "must not be empty")] = "./janus-monitor-actions.jsonl"


@dataclass(frozen=True, slots=True)
class Config:
    listen: Annotated[
        str, _Check(_valid_listen, "must be host:port, e.g. 127.0.0.1:9720 or [::1]:9720")
    ] = "127.0.0.1:9720"
    log: LogConfig = field(default_factory=LogConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    targets: tuple[TargetConfig, ...] = ()
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    remediation: RemediationConfig = field(default_factory=RemediationConfig)

    def target(self, name: str) -> TargetConfig | None:
        for target in self.targets:
            if target.name == name:
                return target
        return None

    def summary(self) -> str:
        """One line for check-config and the startup log; never shows a secret."""
        auth = " (basic auth)" if self.webhook.basic_auth else ""
        names = ", ".join(t.name for t in self.targets) or "none"
        return (
            f"listen {self.listen}, webhook {self.webhook.path}{auth}, "
            f"{len(self.targets)} target(s): {names}, remediation {self.remediation.mode}"
        )


class LiveConfig:
    """The running config, replaced whole on reload: holders read ``current`` per use."""

    __slots__ = ("current",)

    def __init__(self, config: Config) -> None:
        self.current = config


# --- loading ------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def expand_env(text: str, env: Mapping[str, str], path: str) -> str:
    """Replace ${VAR} and ${VAR:-default}; '$$' is a literal '$'."""

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise ConfigError(path, "unterminated or invalid ${...} reference")
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise ConfigError(path, f"environment variable {name} is not set")
        return value

    return _ENV_REF.sub(replace, text)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def _build(cls: type, raw: Any, path: str, env: Mapping[str, str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path or "config", "must be a mapping of keys to values")
    hints = _hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if not isinstance(key, str) or key not in hints:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(_join(path, str(key)), f"unknown key{hint}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key_path = _join(path, f.name)
        if f.name in raw:
            values[f.name] = _convert(hints[f.name], raw[f.name], key_path, env)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(key_path, "is required")
    return cls(**values)


def _convert(hint: Any, raw: Any, path: str, env: Mapping[str, str]) -> Any:
    checks: list[_Check] = []
    kind: _Kind | None = None
    while typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, _Check):
                checks.append(extra)
            elif isinstance(extra, _Kind):
                kind = extra
        hint = base
    if isinstance(raw, str):
        raw = expand_env(raw, env, path)
    value = _convert_plain(hint, kind, raw, path, env)
    for check in checks:
        if not check.ok(value):
            # Show what the user wrote ('500ms'), not what it parsed to; never a secret.
            shown = "" if hint is Secret or not check.show else f", got {_show(raw)}"
            raise ConfigError(path, check.message + shown)
    return value


def _convert_plain(
    hint: Any, kind: _Kind | None, raw: Any, path: str, env: Mapping[str, str]
) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw is None:
            return None
        return _convert(options[0], raw, path, env)
    if kind is not None:
        try:
            return kind.parse(raw)
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from None
    if dataclasses.is_dataclass(hint):
        return _build(hint, raw, path, env)  # type: ignore[arg-type]
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(raw, list):
            raise ConfigError(path, "must be a list")
        return tuple(_convert(item_hint, item, f"{path}[{i}]", env) for i, item in enumerate(raw))
    if origin is Mapping:
        value_hint = typing.get_args(hint)[1]
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ConfigError(path, "must be a mapping")
        return types.MappingProxyType(
            {str(k): _convert(value_hint, v, f"{path}.{k}", env) for k, v in raw.items()}
        )
    if hint is Secret:
        if not isinstance(raw, str):
            raise ConfigError(path, "must be a string")
        return Secret(raw)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ConfigError(path, f"must be true or false, got {_show(raw)}")
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().isdecimal() and len(raw.strip()) < 20:
            return int(raw)
        raise ConfigError(path, f"must be an integer, got {_show(raw)}")
    if hint is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        try:
            return float(raw) if isinstance(raw, str) else _fail()
        except ValueError:
            raise ConfigError(path, f"must be a number, got {_show(raw)}") from None
    if hint is str:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ConfigError(path, f"must be a string, got {_show(raw)}")
        return str(raw)
    raise TypeError(f"config field {path} has an unsupported type {hint!r}")


def _fail() -> float:
    raise ValueError


def _validate(config: Config) -> None:
    seen: set[str] = set()
    for i, target in enumerate(config.targets):
        if target.name in seen:
            raise ConfigError(f"targets[{i}].name", f"duplicate target name {target.name!r}")
        seen.add(target.name)
        if target.poll_interval > target.reconcile_interval:
            raise ConfigError(
                f"targets[{i}].reconcile_interval", "must not be shorter than poll_interval"
            )
        if target.admin_url and target.reconcile_interval >= config.limits.stale_after:
            # Handles only polls confirm would go stale before their turn came.
            raise ConfigError(
                f"targets[{i}].reconcile_interval", "must be shorter than limits.stale_after"
            )


def parse_config(text: str, env: Mapping[str, str] | None = None, source: str = "config") -> Config:
    """Parse YAML text into a Config; raises ConfigError with a one-line message."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise ConfigError("", f"{source}: invalid YAML{where}: {problem}") from None
    config = _build(Config, raw, "", os.environ if env is None else env)
    _validate(config)
    return typing.cast(Config, config)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and parse a config file; raises ConfigError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"cannot read {path}: not UTF-8 text") from None
    return parse_config(text, env, source=str(path))
