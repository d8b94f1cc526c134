"""Typed, frozen configuration loaded from YAML (the contract is SPEC.md "Configuration")."""

from monitor.config.loader import expand_env, load_config, parse_config
from monitor.config.model import (
    ACTION_NAMES,
    BasicAuth,
    Config,
    LimitsConfig,
    LiveConfig,
    LogConfig,
    OverBitrateConfig,
    RemediationConfig,
    SignalsConfig,
    TargetConfig,
    WebhookConfig,
)
from monitor.config.values import (
    MAX_SERVER_NAME,
    ConfigError,
    Secret,
    parse_duration,
    parse_share,
    split_host_port,
    valid_server_name,
)

__all__ = [
    "ACTION_NAMES",
    "MAX_SERVER_NAME",
    "BasicAuth",
    "Config",
    "ConfigError",
    "LimitsConfig",
    "LiveConfig",
    "LogConfig",
    "OverBitrateConfig",
    "RemediationConfig",
    "Secret",
    "SignalsConfig",
    "TargetConfig",
    "WebhookConfig",
    "expand_env",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_share",
    "split_host_port",
    "valid_server_name",
]
