"""Configuration loading: defaults, environment references, and one exact error per bad file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import (
    Config,
    ConfigError,
    Secret,
    load_config,
    parse_config,
    parse_duration,
    parse_share,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "janus-monitor.yml"
INVALID = sorted((Path(__file__).parent / "configs" / "invalid").glob("*.yml"))
EXAMPLE_ENV = {
    "JANUS_EVH_PASSWORD": "evh-pass-123",
    "JANUS_ADMIN_SECRET": "admin-secret-456",
    "ROOM_1234_SECRET": "room-secret-789",
}


def expected_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# error: "), f"{path.name} must start with '# error: <message>'"
    return first.removeprefix("# error: ").replace("CONFIG", str(path))


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_gives_its_exact_message(path: Path) -> None:
    """Each invalid-config fixture fails with exactly the message written at its top."""
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value) == expected_error(path)


def test_there_are_invalid_config_fixtures() -> None:
    """The invalid-config fixture set covers a broad range of mistakes."""
    assert len(INVALID) >= 25


def test_example_config_loads_with_its_values() -> None:
    """The README example loads and every value lands where the SPEC says."""
    config = load_config(EXAMPLE, env=EXAMPLE_ENV)
    assert config.listen == "127.0.0.1:9720"
    assert config.webhook.path == "/events"
    assert config.webhook.basic_auth is not None
    assert config.webhook.basic_auth.username == "janus"
    assert config.webhook.basic_auth.password.reveal() == "evh-pass-123"
    (target,) = config.targets
    assert target.name == "janus-1"
    assert target.admin_url == "http://127.0.0.1:7088/admin"
    assert target.admin_secret.reveal() == "admin-secret-456"
    assert target.api_secret.reveal() == ""  # ${JANUS_API_SECRET:-} with the variable unset
    assert (target.poll_interval, target.poll_budget, target.reconcile_interval) == (5, 0.05, 30)
    assert target.room_secrets["1234"].reveal() == "room-secret-789"
    assert config.signals.setup_timeout == 20.0
    assert config.limits.stale_after == 60.0 and config.limits.max_tracked_handles == 50000
    assert config.remediation.mode == "dry_run"
    assert config.remediation.over_bitrate.steps == ("cap_bitrate", "kick")
    assert config.remediation.over_bitrate.tolerance == 1.25


def test_readme_shows_the_example_config() -> None:
    """The README's config example is the tested example file, verbatim."""
    assert EXAMPLE.read_text().strip() in (ROOT / "README.md").read_text()


def test_empty_file_gives_the_defaults() -> None:
    """An empty config is valid: every key has its default."""
    assert parse_config("", env={}) == Config()
    config = Config()
    assert config.listen == "127.0.0.1:9720" and config.targets == ()
    assert config.webhook.max_body_bytes == 8388608
    assert config.remediation.mode == "dry_run"


def test_config_is_frozen() -> None:
    """The loaded config cannot be changed in place."""
    config = parse_config("targets: [{name: a}]", env={})
    with pytest.raises(AttributeError):
        config.listen = "0.0.0.0:1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.targets[0].room_secrets["1"] = Secret("x")  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A}", {"A": ""}, ""),
        ("pre-${A}-${B}-post", {"A": "1", "B": "2"}, "pre-1-2-post"),
        ("cost $$5", {}, "cost $5"),
        ("lone $ sign", {}, "lone $ sign"),
    ],
)
def test_environment_references(text: str, env: dict[str, str], expected: str) -> None:
    """${VAR} and ${VAR:-default} are replaced from the environment; $$ is a literal $."""
    config = parse_config(f"targets: [{{name: t, admin_secret: '{text}'}}]", env=env)
    assert config.targets[0].admin_secret.reveal() == expected


def test_environment_references_fill_typed_values() -> None:
    """A substituted value is parsed as the key's type: duration, integer, boolean."""
    config = parse_config(
        "limits: {stale_after: '${STALE}', max_tracked_handles: '${MAX}'}\n"
        "signals: {expose_display: '${SHOW}'}",
        env={"STALE": "2m", "MAX": "10", "SHOW": "false"},
    )
    assert config.limits.stale_after == 120.0
    assert config.limits.max_tracked_handles == 10
    assert config.signals.expose_display is False


def test_room_secret_keys_may_be_numbers() -> None:
    """Room ids written as YAML integers become the string ids used everywhere else."""
    config = parse_config("targets: [{name: t, room_secrets: {1234: s}}]", env={})
    assert list(config.targets[0].room_secrets) == ["1234"]


def test_secrets_never_show() -> None:
    """Secrets are hidden from repr, str, the summary and every error message."""
    config = load_config(EXAMPLE, env=EXAMPLE_ENV)
    shown = repr(config) + str(config) + config.summary()
    for secret in EXAMPLE_ENV.values():
        assert secret not in shown
    with pytest.raises(ConfigError) as error:
        parse_config("webhook: {basic_auth: {username: u, password: [hunter2]}}", env={})
    assert "hunter2" not in str(error.value)


def test_secret_comparison() -> None:
    """Secret.matches compares in constant time and is exact."""
    secret = Secret("abc")
    assert secret.matches("abc") and not secret.matches("abd") and not secret.matches("ab")
    assert bool(Secret("")) is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("10s", 10.0), ("1.5m", 90.0), ("2h", 7200.0), ("1m30s", 90.0)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations take ms, s, m and h, and may be combined."""
    assert parse_duration(text) == pytest.approx(seconds)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h"]))
def test_duration_units_scale(value: int, unit: str) -> None:
    """Any whole number with a unit parses to that many units in seconds."""
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    assert parse_duration(f"{value}{unit}") == pytest.approx(value * scale)


@given(st.text(max_size=10))
def test_durations_never_crash(text: str) -> None:
    """Any text either parses as a non-negative duration or raises ValueError with a message."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        message = str(exc)
        assert message.startswith(("invalid duration", "must be a duration"))
    else:
        assert seconds >= 0


@pytest.mark.parametrize(
    ("value", "share"), [("5%", 0.05), ("100%", 1.0), (0.05, 0.05), ("0.5", 0.5), (1, 1.0)]
)
def test_shares(value: object, share: float) -> None:
    """Shares take a percentage or a fraction."""
    assert parse_share(value) == pytest.approx(share)


def test_check_config_command(tmp_path: Path) -> None:
    """check-config exits 0 with a one-line summary, or 2 with the message on stderr."""
    env = {"PATH": "/usr/bin:/bin", **EXAMPLE_ENV}
    ok = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == (
        "config OK: listen 127.0.0.1:9720, webhook /events (basic auth), "
        "1 target(s): janus-1, remediation dry_run"
    )
    for secret in EXAMPLE_ENV.values():
        assert secret not in ok.stdout + ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(INVALID[0])],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"janus-monitor: invalid config: {expected_error(INVALID[0])}"
    missing = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(tmp_path / "nope.yml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert missing.returncode == 2
    assert re.search(r"cannot read .*nope\.yml: No such file or directory", missing.stderr)


def test_secrets_with_any_characters_compare() -> None:
    """Secrets with non-ASCII characters compare equal or not without raising."""
    assert Secret("geheim-ä") == Secret("geheim-ä")
    assert Secret("geheim-ä") != Secret("geheim-a")
    assert Secret("geheim-ä").matches("geheim-ä")
