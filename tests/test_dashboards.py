"""dashboards/: Grafana JSON as tools/dashboards.py writes it, with a datasource variable,
server (and room) variables and stable uids; every panel query parses and uses only metrics
the daemon exports or the recording rules define."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_tool
from tests.test_alerts import RULES
from tools.dashboards import DASHBOARDS, render

FOLDER = Path(__file__).parent.parent / "dashboards"


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target."""
    out = []
    for path in sorted(FOLDER.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            out += [(board["uid"], panel["title"], t["expr"]) for t in panel["targets"]]
    return out


def as_promql(expr: str) -> str:
    """Grafana's variables replaced as Grafana would for 'All' and a 1-minute step."""
    return expr.replace("$__rate_interval", "1m").replace("$server", ".*").replace("$room", ".*")


def test_the_committed_json_is_what_the_generator_writes() -> None:
    """Edit tools/dashboards.py, then run `python -m tools.dashboards`."""
    written = {p.name: p.read_text() for p in FOLDER.glob("*.json")}
    assert written == render()


def test_dashboards_are_ready_for_provisioning() -> None:
    """Stable uid (the file name), a ${datasource} variable used by every panel, a server
    variable, and a room variable wherever a query uses $room."""
    for path in FOLDER.glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem and board["uid"] in DASHBOARDS
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"datasource", "server"} <= names
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            if any("$room" in t["expr"] for t in panel["targets"]):
                assert "room" in names
    provisioning = yaml.safe_load((FOLDER / "provisioning" / "dashboards.yml").read_text())
    assert provisioning["providers"][0]["type"] == "file"


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool checks every query (as a recording rule), after Grafana's substitutions."""
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:{n}", "expr": as_promql(expr)}
        for n, (_, _, expr) in enumerate(panel_queries())
    ]}]}  # fmt: skip
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([require_tool("promtool"), "check", "rules", str(path)],
                             capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_panels_use_only_exported_metrics_and_recording_rules() -> None:
    """Every janus_* name is one the daemon exports; every janus:* one a recording rule."""
    import monitor.metrics as metrics_package

    exported: set[str] = set()
    for module in Path(metrics_package.__file__).parent.glob("*.py"):
        for name in re.findall(r'"(janus_[a-z_]+)"', module.read_text()):
            exported |= {name, name + "_total", name + "_bucket", name + "_count", name + "_sum"}
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    for uid, title, expr in panel_queries():
        for name in re.findall(r"\b(janus_[a-z_]+|janus:[a-z_0-9:]+)", expr):
            assert name in exported or name in recorded, f"{uid} / {title}: {name}"
