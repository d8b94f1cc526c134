"""Doctor checks of each Janus's rabbitmqevh config file (``--janus-config``): the settings
that lose events in a fleet (janus-protocol.md, rabbitmqevh details). The Admin API does not
show event handler settings, so they are read from the file Janus reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.config import Config
from monitor.fleet.topology import EXCHANGE_TYPE

JCFG = "janus.eventhandler.rabbitmqevh.jcfg"
DEFAULT_ROUTE_KEY = "janus-events"
MIN_HEARTBEAT = 4  # rabbitmqevh retries every heartbeat/2 whole seconds: below 4 it spins

_SETTING = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*("(?:[^"\\]|\\.)*"|[^;,\s}]+)')
_COMMENT = re.compile(r'("(?:[^"\\]|\\.)*")|#[^\n]*|//[^\n]*')

Value = str | int | bool


@dataclass(frozen=True, slots=True)
class Note:
    """A finding before it is given its target: severity, what, fix."""

    severity: str
    what: str
    fix: str = ""


def read_jcfg(text: str) -> dict[str, Value]:
    """The flat settings of a libconfig file such as rabbitmqevh's (one ``general`` group)."""
    text = _COMMENT.sub(lambda m: m.group(1) or "", text)
    settings: dict[str, Value] = {}
    for key, raw in _SETTING.findall(text):
        if raw.startswith('"'):
            settings[key] = raw[1:-1].replace('\\"', '"')
        elif raw.lower() in ("true", "false"):
            settings[key] = raw.lower() == "true"
        elif re.fullmatch(r"-?\d+", raw):
            settings[key] = int(raw)
        else:
            settings[key] = raw
    return settings


def _flag(settings: Mapping[str, Value], key: str) -> bool:
    value = settings.get(key, False)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


def settings_enabled(settings: Mapping[str, Value]) -> bool:
    return _flag(settings, "enabled")


def check_settings(name: str, settings: Mapping[str, Value], config: Config) -> list[Note]:
    """The findings for one Janus (target ``name``) whose rabbitmqevh file holds ``settings``."""
    if not _flag(settings, "enabled"):
        if config.amqp is None:
            return []
        return [Note("error", "rabbitmqevh is not enabled: none of this Janus's events reach "
                     "the broker the daemons consume", "set enabled = true")]  # fmt: skip
    notes: list[Note] = []
    heartbeat = settings.get("heartbeat", 0)
    heartbeat = heartbeat if isinstance(heartbeat, int) else 0
    if heartbeat <= 0:
        notes.append(Note("warning", "rabbitmqevh heartbeat = 0 (the default): Janus never "
                          "reconnects after a broker restart, and every event is lost until "
                          "Janus restarts", "set heartbeat = 10"))  # fmt: skip
    elif heartbeat < MIN_HEARTBEAT:
        notes.append(Note("warning", f"rabbitmqevh heartbeat = {heartbeat}: it retries every "
                          "heartbeat/2 whole seconds, which below 4 is a busy loop",
                          "set heartbeat = 10"))  # fmt: skip
    route_key = settings.get("route_key", DEFAULT_ROUTE_KEY)
    if route_key != name:
        notes.append(Note("warning", f"rabbitmqevh route_key is {route_key!r}, not the "
                          "server_name: the shard is picked by route_key, and Janus servers "
                          "sharing one land on the same shard",
                          f'set route_key = "{name}"'))  # fmt: skip
    if config.amqp is not None:
        exchange = settings.get("exchange", "")
        if exchange != config.amqp.exchange:
            notes.append(Note("error", f"rabbitmqevh publishes to exchange {exchange!r}, the "
                              f"daemons consume {config.amqp.exchange!r}",
                              f'set exchange = "{config.amqp.exchange}"'))  # fmt: skip
        kind = settings.get("exchange_type", "fanout")
        if kind != EXCHANGE_TYPE:
            notes.append(Note("error", f"rabbitmqevh exchange_type is {kind!r}: the shards "
                              f"need {EXCHANGE_TYPE!r}",
                              f'set exchange_type = "{EXCHANGE_TYPE}"'))  # fmt: skip
    if _flag(settings, "ssl_enable") and not (
        _flag(settings, "ssl_verify_peer") and _flag(settings, "ssl_verify_hostname")
    ):
        notes.append(Note("warning", "rabbitmqevh uses TLS without verifying the broker "
                          "(ssl_verify_peer / ssl_verify_hostname default to false)",
                          "set ssl_verify_peer = true, ssl_verify_hostname = true and "
                          "ssl_cacert"))  # fmt: skip
    if not notes:
        notes.append(Note("ok", f"rabbitmqevh publishes to {settings.get('exchange')!r} "
                          f"with route_key {route_key!r}, heartbeat {heartbeat}"))  # fmt: skip
    return notes


def read_settings(folder: Path) -> dict[str, Value] | None:
    try:
        return read_jcfg((folder / JCFG).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def duplicates(values: Mapping[str, str]) -> dict[str, list[str]]:
    """``{value: [targets]}`` for every value more than one target has."""
    by_value: dict[str, list[str]] = {}
    for target, value in values.items():
        by_value.setdefault(value, []).append(target)
    return {v: sorted(t) for v, t in by_value.items() if len(t) > 1}
