"""alerts/: rules that promtool accepts, a unit test for every alert (silent before for:,
firing after with exact labels and annotations), and a runbook section for each."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_tool

ALERTS = Path(__file__).parent.parent / "alerts"
RULES = ALERTS / "janus-monitor.rules.yml"
TESTS = ALERTS / "tests" / "janus-monitor.test.yml"
RUNBOOK = ALERTS / "RUNBOOK.md"


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True,
                          check=False, timeout=120, cwd=ALERTS)  # fmt: skip


def test_promtool_checks_the_rules() -> None:
    """promtool check rules: every rule parses and is well formed."""
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    """promtool test rules: every alert's before/after evaluations and the recording rules."""
    tested = promtool("test", "rules", str(TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_annotated_and_tested_both_ways() -> None:
    """severity in critical/warning/info, summary, description using labels, a runbook_url
    whose anchor is a RUNBOOK.md section; a silent and a firing evaluation in the tests."""
    runbook = RUNBOOK.read_text()
    anchors = {m.lower() for m in re.findall(r"^## (\w+)$", runbook, flags=re.MULTILINE)}
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    evals: dict[str, list[bool]] = {}
    for test in tests:
        for case in test.get("alert_rule_test", []):
            evals.setdefault(case["alertname"], []).append(bool(case["exp_alerts"]))
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        notes = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= notes.keys(), name
        assert "$labels." in notes["description"], name
        assert notes["runbook_url"].endswith("RUNBOOK.md#" + name.lower()), name
        assert name.lower() in anchors, f"RUNBOOK.md has no section for {name}"
        assert sorted(evals.get(name, [])) == [False, True], f"{name}: {evals.get(name)}"
        assert "for" in rule, name


def test_rules_use_only_metrics_the_daemon_exports() -> None:
    """Every metric name in a rule is one the daemon exports (or a recording rule)."""
    import monitor.metrics as metrics_package

    exported = set()
    for module in Path(metrics_package.__file__).parent.glob("*.py"):
        exported |= set(re.findall(r'"(janus_[a-z_]+)"', module.read_text()))
    names = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"\b(janus_[a-z_]+)", rule["expr"]))
    known = set()
    for name in exported:
        known |= {name, name + "_total", name + "_bucket", name + "_count", name + "_sum"}
    assert names <= known, names - known
