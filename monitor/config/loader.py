"""Loading: YAML text -> Config, driven by the dataclass annotations, so every error names
the key path it came from (``targets[0].admin_secrte: unknown key (did you mean ...)``)."""

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml

from monitor.config.model import Config
from monitor.config.values import Check, ConfigError, Kind, Secret, brief

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
    checks: list[Check] = []
    kind: Kind | None = None
    while typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, Check):
                checks.append(extra)
            elif isinstance(extra, Kind):
                kind = extra
        hint = base
    if isinstance(raw, str):
        raw = expand_env(raw, env, path)
    value = _convert_plain(hint, kind, raw, path, env)
    for check in checks:
        if not check.ok(value):
            # Show what the user wrote ('500ms'), not what it parsed to; never a secret.
            shown = "" if hint is Secret or not check.show else f", got {brief(raw)}"
            raise ConfigError(path, check.message + shown)
    return value


def _convert_plain(
    hint: Any, kind: Kind | None, raw: Any, path: str, env: Mapping[str, str]
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
        raise ConfigError(path, f"must be true or false, got {brief(raw)}")
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().isdecimal() and len(raw.strip()) < 20:
            return int(raw)
        raise ConfigError(path, f"must be an integer, got {brief(raw)}")
    if hint is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        try:
            return float(raw) if isinstance(raw, str) else _fail()
        except ValueError:
            raise ConfigError(path, f"must be a number, got {brief(raw)}") from None
    if hint is str:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ConfigError(path, f"must be a string, got {brief(raw)}")
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
