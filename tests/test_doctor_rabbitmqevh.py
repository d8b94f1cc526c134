"""doctor's rabbitmqevh checks: each setting that loses events in a fleet is named, with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import janus_config_dirs
from monitor.config import load_config
from monitor.doctor.rabbitmqevh import check_settings, duplicates, read_jcfg
from tests.conftest import make_config

FLEET = make_config("amqp: {url: 'amqp://127.0.0.1', exchange: janus-events}")
GOOD = """general: {
    enabled = true  # on
    events = "all"
    host = "127.0.0.1"
    exchange = "janus-events"   // the fleet's
    exchange_type = "x-consistent-hash"
    route_key = "janus-1"
    heartbeat = 10
}
"""


def notes(text: str, name: str = "janus-1") -> list[tuple[str, str]]:
    return [(n.severity, n.what) for n in check_settings(name, read_jcfg(text), FLEET)]


def test_the_reader_takes_libconfig_values_and_skips_comments() -> None:
    """Strings, integers and booleans are read; # and // comments are not settings."""
    settings = read_jcfg(GOOD + '#route_key = "commented"\n')
    assert settings["enabled"] is True
    assert settings["heartbeat"] == 10
    assert settings["route_key"] == "janus-1"
    assert settings["exchange"] == "janus-events"


def test_a_good_file_is_ok() -> None:
    """The settings a fleet needs give one ok finding."""
    assert [severity for severity, _ in notes(GOOD)] == ["ok"]


@pytest.mark.parametrize(
    ("change", "severity", "words"),
    [
        (("heartbeat = 10", "heartbeat = 0"), "warning", "never reconnects"),
        (("heartbeat = 10", ""), "warning", "never reconnects"),
        (("heartbeat = 10", "heartbeat = 1"), "warning", "busy loop"),
        (('route_key = "janus-1"', ""), "warning", "'janus-events', not the server_name"),
        (('route_key = "janus-1"', 'route_key = "other"'), "warning", "not the server_name"),
        (('exchange = "janus-events"', 'exchange = "x"'), "error", "daemons consume"),
        (('exchange_type = "x-consistent-hash"', ""), "error", "'fanout'"),
        (("enabled = true", "enabled = false"), "error", "not enabled"),
        (("heartbeat = 10", "heartbeat = 10\nssl_enable = true"), "warning", "without verifying"),
    ],
)
def test_each_setting_that_loses_events_is_named(
    change: tuple[str, str], severity: str, words: str
) -> None:
    """Each bad setting gives its own finding, with the words that say what it costs."""
    found = notes(GOOD.replace(*change))
    assert any(s == severity and words in what for s, what in found), found


def test_verified_tls_is_fine() -> None:
    """TLS with peer and hostname verification is not a finding."""
    text = GOOD + "ssl_enable = true\nssl_verify_peer = true\nssl_verify_hostname = true\n"
    assert [severity for severity, _ in notes(text)] == ["ok"]


def test_without_amqp_a_disabled_handler_is_nothing() -> None:
    """A single daemon on webhooks does not care that rabbitmqevh is off."""
    single = make_config("")
    assert check_settings("janus-1", read_jcfg("general: {enabled = false}"), single) == []


def test_shared_values_are_found() -> None:
    """A route key (or server name) that several targets share is reported with them all."""
    assert duplicates({"a": "k", "b": "k", "c": "z"}) == {"k": ["a", "b"]}


def test_janus_config_arguments(tmp_path: Path) -> None:
    """--janus-config takes TARGET=DIR, or DIR alone when there is one target."""
    assert janus_config_dirs([f"a={tmp_path}"], ["a", "b"]) == {"a": tmp_path}
    assert janus_config_dirs([str(tmp_path)], ["a"]) == {"a": tmp_path}
    with pytest.raises(ValueError, match="say which target"):
        janus_config_dirs([str(tmp_path)], ["a", "b"])


def test_the_fleet_examples_agree() -> None:
    """The example rabbitmqevh file passes doctor against the example fleet config."""
    examples = Path(__file__).parent.parent / "examples"
    env = {"AMQP_PASSWORD": "x", "JANUS_ADMIN_SECRET": "y"}
    config = load_config(examples / "janus-monitor-fleet.yml", env=env)
    assert config.amqp is not None and config.amqp.shards == 8
    settings = read_jcfg((examples / "janus.eventhandler.rabbitmqevh.jcfg").read_text())
    found = check_settings("janus-a", settings, config)
    assert [(n.severity, n.what) for n in found] == [
        ("ok", "rabbitmqevh publishes to 'janus-events' with route_key 'janus-a', heartbeat 10")
    ]
