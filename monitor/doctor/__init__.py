"""``janus-monitor doctor --config FILE``: one-shot checks of every target through its Admin
API, each finding with a severity and a fix. Exit 1 if any finding is an error. A wrong
secret is a finding, not a traceback; no secret is ever printed (the Admin client scrubs)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from monitor.config import Config, TargetConfig, split_host_port
from monitor.decode.candidates import address_scope
from monitor.doctor import rabbitmqevh
from monitor.janus.admin import AdminClient
from monitor.janus.errors import (
    UNAUTHORIZED,
    VIDEOROOM_MISSING_ELEMENT,
    VIDEOROOM_UNAUTHORIZED,
    JanusError,
    JanusRequestError,
    PluginError,
)
from monitor.janus.wire import videoroom_id

VIDEOROOM = "janus.plugin.videoroom"
DEFAULT_SERVER_NAME = "MyJanusInstance"
EVENT_WAIT = 2.0  # seconds for a custom_event to reach the running daemon
ROOM_EXISTS = 427


@dataclass(frozen=True, slots=True)
class Finding:
    target: str
    severity: str  # error | warning | info | ok
    what: str
    fix: str = ""

    def line(self) -> str:
        fix = f"\n    fix: {self.fix}" if self.fix else ""
        return f"{self.severity.upper():7} {self.target}: {self.what}{fix}"


async def check_target(
    http: aiohttp.ClientSession, config: Config, target: TargetConfig,
    server_names: dict[str, str] | None = None,
) -> list[Finding]:  # fmt: skip
    name = target.name
    if not target.admin_url:
        return [
            Finding(
                name,
                "warning",
                "no admin_url: nothing can be checked, nothing polled",
                "set targets[].admin_url (janus.transport.http.jcfg admin_http)",
            )
        ]
    admin = AdminClient(http, target.admin_url, target.admin_secret, timeout=5.0)
    found: list[Finding] = []
    try:
        info = await admin.info()
    except JanusError as exc:
        return [Finding(name, "error", f"the Admin API does not answer: {exc}",
                        "start Janus; check admin_url and admin_http/admin_port")]  # fmt: skip
    try:
        await admin.list_sessions()
        found.append(Finding(name, "ok", "Admin API reachable and admin_secret accepted"))
    except JanusRequestError as exc:
        if exc.code == UNAUTHORIZED:
            fix = "set targets[].admin_secret to janus.jcfg general.admin_secret"
            return [Finding(name, "error", "admin_secret refused (403)", fix)]
        found.append(Finding(name, "error", f"list_sessions failed: {exc}"))
    except JanusError as exc:
        found.append(Finding(name, "error", f"list_sessions failed: {exc}"))
    if server_names is not None and isinstance(info.get("server-name"), str):
        server_names[name] = info["server-name"]
    found += _identity(name, info)
    found += _nat(name, info)
    found += await _event_handlers(http, config, admin, name, info)
    found += await _rooms(admin, name)
    return found


def _identity(name: str, info: dict[str, Any]) -> list[Finding]:
    reported = info.get("server-name")
    if reported == DEFAULT_SERVER_NAME:
        return [Finding(name, "error", f"server_name is Janus's default {DEFAULT_SERVER_NAME!r}",
                        f'set general.server_name = "{name}" in janus.jcfg')]  # fmt: skip
    if isinstance(reported, str) and reported != name:
        return [Finding(name, "error",
                        f"Janus calls itself {reported!r}: its events arrive under that name",
                        f'set general.server_name = "{name}" in janus.jcfg, or rename the '
                        f"target {reported!r}")]  # fmt: skip
    return []


def _nat(name: str, info: dict[str, Any]) -> list[Finding]:
    public = info.get("public-ip")
    fix = 'set nat: { nat_1_1_mapping = "<public IP>" } (or stun_server) in janus.jcfg'
    if not public:
        return [Finding(name, "warning", "no public-ip: behind NAT, clients get private "
                        "candidates and cannot connect", fix)]  # fmt: skip
    scope = address_scope(str(public))
    if scope != "public":
        return [Finding(name, "warning", f"public-ip {public} is itself {scope}", fix)]
    return [Finding(name, "ok", f"public-ip {public}")]


async def _event_handlers(
    http: aiohttp.ClientSession, config: Config, admin: AdminClient, name: str,
    info: dict[str, Any],
) -> list[Finding]:  # fmt: skip
    handlers = info.get("events") if isinstance(info.get("events"), dict) else {}
    if not info.get("event_handlers") or not handlers:
        return [Finding(name, "error", "no event handler loaded: the daemon gets no events",
                        'enable janus.eventhandler.sampleevh (events = "all", backend = '
                        f'"http://{config.listen}{config.webhook.path}") and '
                        "events.broadcast = true in janus.jcfg")]  # fmt: skip
    loaded = ", ".join(sorted(handlers))
    daemon = f"http://{_connect_to(config.listen)}"
    try:  # one event of our own, then: did the running daemon get anything from this Janus?
        await admin.request("custom_event", schema="janus-monitor.doctor",
                            data={"probe": secrets.token_hex(4)})  # fmt: skip
        await asyncio.sleep(EVENT_WAIT)
        async with http.get(f"{daemon}/api/v1/servers", params={"server": name}) as reply:
            servers = (await reply.json())["servers"]
    except (JanusError, aiohttp.ClientError, OSError, KeyError, ValueError):
        return [Finding(name, "info", f"event handlers loaded ({loaded}); no daemon answers "
                        f"at {daemon} to tell whether they reach it")]  # fmt: skip
    age = servers[0].get("last_event_age_seconds") if servers else None
    if config.amqp is not None and not servers:
        return [Finding(name, "info", f"event handlers loaded ({loaded}); the daemon at "
                        f"{daemon} does not own {name}: with amqp, another daemon of the fleet "
                        "may (see janus_monitor_emitter_owned)")]  # fmt: skip
    if age is None or age > EVENT_WAIT + 3:
        return [
            Finding(
                name,
                "error",
                f"event handlers loaded ({loaded}) but no event reached the daemon at {daemon}",
                f"point the handler's backend at http://{config.listen}"
                f'{config.webhook.path} (wsevh: ws://...), events = "all"',
            )
        ]
    return [Finding(name, "ok", f"events reach the daemon ({loaded})")]


async def _rooms(admin: AdminClient, name: str) -> list[Finding]:
    try:
        listed = (await admin.message_plugin(VIDEOROOM, {"request": "list"})).get("list") or []
    except JanusError as exc:
        return [Finding(name, "warning", f"VideoRoom list failed: {exc}")]
    found: list[Finding] = []
    uncapped = [str(r["room"]) for r in listed if isinstance(r, dict) and not r.get("bitrate")]
    if uncapped:
        found.append(Finding(name, "warning", f"rooms without a bitrate cap: {', '.join(uncapped)}",
                             'create rooms with "bitrate": 512000 (or your cap) and '
                             '"bitrate_cap": true'))  # fmt: skip
    recording = [f"{r['room']} ({r.get('rec_dir') or 'default rec_dir'})" for r in listed
                 if isinstance(r, dict) and r.get("record")]  # fmt: skip
    if recording:
        found.append(Finding(name, "info", f"rooms recording: {', '.join(recording)}"))
    found += await _admin_key(admin, name, listed)
    return found


async def _admin_key(admin: AdminClient, name: str, listed: list[Any]) -> list[Finding]:
    """Whether room creation is locked: a `create` of a room that exists is refused for a
    missing admin_key when one is set, else for the room existing; nothing is created."""
    rooms = [r["room"] for r in listed if isinstance(r, dict) and "room" in r]
    if not rooms:
        return [Finding(name, "info", "no room to check the VideoRoom admin_key with")]
    existing = videoroom_id(str(rooms[0]), isinstance(rooms[0], str))
    try:
        await admin.message_plugin(VIDEOROOM, {"request": "create", "room": existing})
    except PluginError as exc:
        if exc.code in (VIDEOROOM_MISSING_ELEMENT, VIDEOROOM_UNAUTHORIZED):
            return [Finding(name, "ok", "VideoRoom admin_key set: room creation is locked")]
        if exc.code == ROOM_EXISTS:
            return [Finding(name, "warning", "VideoRoom admin_key not set: any client can "
                            "create rooms (with any bitrate)",
                            "set general.admin_key in janus.plugin.videoroom.jcfg")]  # fmt: skip
        return [Finding(name, "info", f"admin_key check inconclusive: {exc}")]
    except JanusError as exc:
        return [Finding(name, "info", f"admin_key check inconclusive: {exc}")]
    return [Finding(name, "warning", f"a create of existing room {existing} succeeded")]


def _connect_to(listen: str) -> str:
    host, port = split_host_port(listen)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _rabbitmqevh(config: Config, janus_configs: Mapping[str, Path]) -> list[Finding]:
    """Each Janus's rabbitmqevh file, then route keys shared by several Janus."""
    found: list[Finding] = []
    route_keys: dict[str, str] = {}
    for target in config.targets:
        folder = janus_configs.get(target.name)
        if folder is None:
            continue
        settings = rabbitmqevh.read_settings(folder)
        if settings is None:
            found.append(Finding(target.name, "error",
                                 f"cannot read {folder / rabbitmqevh.JCFG}"))  # fmt: skip
            continue
        for note in rabbitmqevh.check_settings(target.name, settings, config):
            found.append(Finding(target.name, note.severity, note.what, note.fix))
        if rabbitmqevh.settings_enabled(settings):
            route_keys[target.name] = str(settings.get("route_key", rabbitmqevh.DEFAULT_ROUTE_KEY))
    for key, targets in rabbitmqevh.duplicates(route_keys).items():
        what = f"rabbitmqevh route_key {key!r} is used by several Janus"
        found.append(Finding(", ".join(targets), "error", what,
                             "give each Janus its own route_key: its server_name"))  # fmt: skip
    unknown = sorted(set(janus_configs) - {t.name for t in config.targets})
    if unknown:
        found.append(Finding("-", "error", f"--janus-config for unknown targets: {unknown}"))
    if config.amqp is not None and not janus_configs:
        found.append(Finding("-", "info", "rabbitmqevh settings not checked: pass "
                             "--janus-config TARGET=DIR (the folder of janus.jcfg)"))  # fmt: skip
    return found


def _shared_server_names(server_names: Mapping[str, str]) -> list[Finding]:
    return [
        Finding(", ".join(targets), "error", f"several Janus call themselves {name!r}: their "
                "events merge into one server", "give each Janus its own general.server_name")
        for name, targets in rabbitmqevh.duplicates(server_names).items()
    ]  # fmt: skip


async def doctor(
    config: Config, out: TextIO | None = None, janus_configs: Mapping[str, Path] | None = None
) -> int:
    out = out if out is not None else sys.stdout  # looked up now: stdout may be redirected
    server_names: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(check_target(http, config, t, server_names) for t in config.targets)
        )
    findings = [f for target_findings in results for f in target_findings]
    findings += _shared_server_names(server_names)
    findings += _rabbitmqevh(config, janus_configs or {})
    if not config.targets:
        findings.append(Finding("-", "error", "no targets configured", "add targets[]"))
    for finding in findings:
        print(finding.line(), file=out)
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    print(f"{len(config.targets)} target(s): {errors} error(s), {warnings} warning(s)", file=out)
    return 1 if errors else 0
