"""The configuration itself: typed, frozen dataclasses, defaults first (SPEC "Configuration").

Every key a user may write is a field here; the loader refuses any other.
"""

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from monitor.config.values import (
    HTTP_URL,
    Check,
    Duration,
    Secret,
    Share,
    at_least,
    one_of,
    positive,
    redact_url,
    valid_amqp_url,
    valid_exchange_name,
    valid_listen,
    valid_regex,
    valid_server_name,
    valid_webhook_path,
)

ACTION_NAMES = ("cap_bitrate", "kick")
"""Remediation steps the config may name; the remediation registry will own this list."""


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Annotated[str, one_of("debug", "info", "warning", "error")] = "info"
    format: Annotated[str, one_of("json", "console", "auto")] = "auto"


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: Annotated[str, Check(bool, "must not be empty")]
    password: Annotated[Secret, Check(bool, "must not be empty")]


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    path: Annotated[
        str,
        Check(
            valid_webhook_path,
            "must be an absolute path such as /events, not /, /metrics, /api/... or /-/...",
        ),
    ] = "/events"
    basic_auth: BasicAuth | None = None
    max_body_bytes: Annotated[int, at_least(1024)] = 8 * 1024 * 1024
    max_decompressed_bytes: Annotated[int, at_least(1024)] = 64 * 1024 * 1024
    # sampleevh resends the same bytes after a transport error (a 10 s timeout included), up to
    # 5 times with 3.1 s of backoff: a body seen again within this window is not counted twice.
    duplicate_window: Annotated[Duration, Check(lambda v: v >= 0, "must be 0 (off) or more")] = 60.0


@dataclass(frozen=True, slots=True)
class TargetConfig:
    name: Annotated[str, Check(valid_server_name, "must be 1 to 128 printable characters")]
    admin_url: Annotated[str | None, HTTP_URL] = None
    admin_secret: Secret = field(default_factory=Secret)
    janus_url: Annotated[str | None, HTTP_URL] = None
    api_secret: Secret = field(default_factory=Secret)
    poll_interval: Annotated[Duration, Check(lambda v: v >= 0.1, "must be at least 100ms")] = 5.0
    poll_budget: Share = 0.05
    reconcile_interval: Annotated[Duration, Check(lambda v: v >= 1.0, "must be at least 1s")] = 30.0
    room_secrets: Mapping[str, Secret] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class SignalsConfig:
    setup_timeout: Annotated[Duration, positive()] = 20.0
    expose_display: bool = True


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_tracked_handles: Annotated[int, at_least(1)] = 50000
    max_tracked_sessions: Annotated[int, at_least(1)] = 50000
    max_tracked_rooms: Annotated[int, at_least(1)] = 20000
    max_tracked_publishers: Annotated[int, at_least(1)] = 50000
    stale_after: Annotated[Duration, Check(lambda v: v >= 1.0, "must be at least 1s")] = 60.0
    max_unknown_emitters: Annotated[int, at_least(0)] = 16


@dataclass(frozen=True, slots=True)
class OverBitrateConfig:
    tolerance: Annotated[float, at_least(1.0)] = 1.25
    sustain: Annotated[Duration, at_least(0)] = 10.0
    steps: tuple[Annotated[str, one_of(*ACTION_NAMES)], ...] = ACTION_NAMES
    step_interval: Annotated[Duration, positive()] = 10.0
    exempt_rooms: tuple[str, ...] = ()
    exempt_display_regex: Annotated[
        str | None, Check(valid_regex, "must be a valid regular expression")
    ] = None
    default_cap: Annotated[int, at_least(0)] = 0


@dataclass(frozen=True, slots=True)
class RemediationConfig:
    mode: Annotated[str, one_of("off", "dry_run", "enforce")] = "dry_run"
    max_actions_per_minute: Annotated[int, at_least(0)] = 20
    over_bitrate: OverBitrateConfig = field(default_factory=OverBitrateConfig)
    audit_log: Annotated[str, Check(bool, "must not be empty")] = "./janus-monitor-actions.jsonl"


@dataclass(frozen=True, slots=True)
class AmqpTlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_peer: bool = True


MAX_SHARDS = 256


@dataclass(frozen=True, slots=True)
class AmqpConfig:
    """Consuming rabbitmqevh events from RabbitMQ, one shard queue per consumer (SPEC)."""

    url: Annotated[
        Secret,
        Check(
            lambda v: valid_amqp_url(v.reveal()),
            "must be an amqp:// or amqps:// URL with a host, "
            "e.g. amqp://janus-monitor:${AMQP_PASSWORD}@127.0.0.1:5672/%2F",
        ),
    ]
    exchange: Annotated[
        str,
        Check(
            valid_exchange_name,
            "must be 1 to 200 bytes of printable characters, not starting with amq.",
        ),
    ] = "janus-events"
    shards: Annotated[
        int, Check(lambda v: 1 <= v <= MAX_SHARDS, f"must be from 1 to {MAX_SHARDS}")
    ] = 8
    prefetch: Annotated[int, Check(lambda v: 1 <= v <= 65535, "must be from 1 to 65535")] = 200
    tls: AmqpTlsConfig = field(default_factory=AmqpTlsConfig)
    # How often each daemon probes every shard and target: ownership is learned from what
    # arrives, so a standby that takes a shard over knows it within about this long.
    probe_interval: Annotated[
        Duration, Check(lambda v: 0.1 <= v <= 60, "must be from 100ms to 60s")
    ] = 1.0


@dataclass(frozen=True, slots=True)
class Config:
    listen: Annotated[
        str, Check(valid_listen, "must be host:port, e.g. 127.0.0.1:9720 or [::1]:9720")
    ] = "127.0.0.1:9720"
    log: LogConfig = field(default_factory=LogConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    targets: tuple[TargetConfig, ...] = ()
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    remediation: RemediationConfig = field(default_factory=RemediationConfig)
    amqp: AmqpConfig | None = None

    def target(self, name: str) -> TargetConfig | None:
        for target in self.targets:
            if target.name == name:
                return target
        return None

    def summary(self) -> str:
        """One line for check-config and the startup log; never shows a secret."""
        auth = " (basic auth)" if self.webhook.basic_auth else ""
        names = ", ".join(t.name for t in self.targets) or "none"
        amqp = (
            f", amqp {redact_url(self.amqp.url.reveal())} exchange {self.amqp.exchange} "
            f"({self.amqp.shards} shards)"
            if self.amqp
            else ""
        )
        return (
            f"listen {self.listen}, webhook {self.webhook.path}{auth}, "
            f"{len(self.targets)} target(s): {names}, remediation {self.remediation.mode}{amqp}"
        )


class LiveConfig:
    """The running config, replaced whole on reload: holders read ``current`` per use."""

    __slots__ = ("current",)

    def __init__(self, config: Config) -> None:
        self.current = config
