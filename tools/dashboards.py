"""``python -m tools.dashboards``: write the Grafana dashboards (dashboards/*.json) from the
panel lists below, so every query lives in one reviewable place. The JSON is committed;
``tests/test_dashboards.py`` checks it is what this script writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "dashboards"
S = 'server=~"$server"'
R = 'server=~"$server", room=~"$room"'

# (title, [(panel title, type, unit, [queries])]); queries may use $server, $room,
# $__rate_interval. Types: timeseries, stat, table.
Panel = tuple[str, str, str, list[str]]
DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "janus-fleet": (
        "Janus fleet overview",
        [
            ("Servers up", "stat", "none", [f"sum(janus_up{{{S}}})", f"count(janus_up{{{S}}})"]),
            ("Sessions", "timeseries", "none", [f"janus_sessions{{{S}}}"]),
            (
                "Handles by plugin",
                "timeseries",
                "none",
                [f"sum by (server, plugin) (janus_handles{{{S}}})"],
            ),
            ("Rooms", "timeseries", "none", [f"janus_videoroom_rooms{{{S}}}"]),
            (
                "Publishers",
                "timeseries",
                "none",
                [f"sum by (server) (janus_videoroom_room_publishers{{{S}}})"],
            ),
            ("Events/s", "timeseries", "ops", [f"janus:events_received:rate1m{{{S}}}"]),
            ("Event lag p95", "timeseries", "s", [f"janus:event_lag_seconds:p95_5m{{{S}}}"]),
            ("Janus build", "table", "none", [f"janus_info{{{S}}}"]),
        ],
    ),
    "janus-rooms": (
        "Janus rooms and publishers",
        [
            (
                "Publisher bitrate vs room cap",
                "timeseries",
                "bps",
                [
                    f"janus:publisher_bitrate_bits_per_second:sum{{{R}}}",
                    f"max by (server, room) (janus_videoroom_room_bitrate_cap_bits_per_second{{{R}}})",
                ],
            ),
            (
                "Publishers over the cap",
                "timeseries",
                "none",
                [f"sum by (server, room) (janus_videoroom_publisher_over_cap{{{R}}})"],
            ),
            (
                "Bytes received by publisher",
                "timeseries",
                "Bps",
                [
                    f"sum by (server, room, publisher) (rate(janus_videoroom_publisher_received_bytes_total{{{R}}}[$__rate_interval]))"
                ],
            ),
            (
                "Subscribers and degraded subscribers",
                "timeseries",
                "none",
                [
                    f"janus_videoroom_room_subscribers{{{R}}}",
                    f"janus_videoroom_room_subscribers_degraded{{{R}}}",
                ],
            ),
            (
                "Worst subscriber loss",
                "timeseries",
                "percentunit",
                [f"janus_videoroom_room_subscriber_loss_ratio_max{{{R}}}"],
            ),
            (
                "Jitter p95",
                "timeseries",
                "s",
                [
                    f"histogram_quantile(0.95, sum by (server, side, le) (rate(janus_media_jitter_seconds_bucket{{{S}}}[$__rate_interval])))"
                ],
            ),
            (
                "Room caps and limits",
                "table",
                "none",
                [
                    f"janus_videoroom_room_bitrate_cap_bits_per_second{{{R}}}",
                    f"janus_videoroom_room_max_publishers{{{R}}}",
                ],
            ),
            ("Publishers", "table", "none", [f"janus_videoroom_publisher_info{{{R}}}"]),
        ],
    ),
    "janus-connectivity": (
        "Janus connectivity",
        [
            (
                "ICE failures by stage and cause",
                "timeseries",
                "ops",
                [
                    f"sum by (server, stage, cause) (rate(janus_ice_failures_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Failure ratio",
                "timeseries",
                "percentunit",
                [f"janus:ice_failure_ratio:rate10m{{{S}}}"],
            ),
            (
                "Candidates by side, type and scope",
                "timeseries",
                "ops",
                [
                    f"sum by (side, type, scope) (rate(janus_ice_candidates_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Selected pairs (relay use)",
                "timeseries",
                "ops",
                [
                    f"sum by (local_type, remote_type) (rate(janus_selected_pairs_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Hangups by reason",
                "timeseries",
                "ops",
                [
                    f"sum by (server, reason) (rate(janus_webrtc_hangups_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Setup time p95",
                "timeseries",
                "s",
                [
                    f"histogram_quantile(0.95, sum by (server, role, le) (rate(janus_webrtc_setup_seconds_bucket{{{S}}}[$__rate_interval])))"
                ],
            ),
            ("Public IP configured", "stat", "none", [f"janus_public_ip_configured{{{S}}}"]),
            (
                "RTT p95",
                "timeseries",
                "s",
                [
                    f"histogram_quantile(0.95, sum by (server, le) (rate(janus_media_rtt_seconds_bucket{{{S}}}[$__rate_interval])))"
                ],
            ),
        ],
    ),
    "janus-handles": (
        "Janus handle hygiene",
        [
            (
                "Handle reuse by pattern",
                "timeseries",
                "ops",
                [
                    f"sum by (server, plugin, pattern) (rate(janus_handle_reuse_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            ("Live reused handles", "timeseries", "none", [f"janus_handles_reused{{{S}}}"]),
            ("Handles by plugin", "timeseries", "none", [f"janus_handles{{{S}}}"]),
            (
                "Media that stopped arriving",
                "timeseries",
                "ops",
                [
                    f"sum by (server, kind) (rate(janus_media_receiving_stopped_total{{{S}}}[$__rate_interval]))"
                ],
            ),
        ],
    ),
    "janus-remediation": (
        "Janus remediation",
        [
            (
                "Decisions by action and outcome",
                "timeseries",
                "ops",
                [
                    f"sum by (server, action, outcome) (rate(janus_monitor_remediation_actions_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Decisions (total)",
                "stat",
                "none",
                [f"sum by (action, outcome) (janus_monitor_remediation_actions_total{{{S}}})"],
            ),
            (
                "Publishers over the cap",
                "timeseries",
                "none",
                [f"sum by (server) (janus_videoroom_publisher_over_cap{{{S}}})"],
            ),
        ],
    ),
    "janus-monitor-health": (
        "janus-monitor health",
        [
            (
                "Poll duration p95",
                "timeseries",
                "s",
                [
                    f"histogram_quantile(0.95, sum by (server, le) (rate(janus_monitor_poll_duration_seconds_bucket{{{S}}}[$__rate_interval])))"
                ],
            ),
            (
                "Poll budget used",
                "timeseries",
                "percentunit",
                [f"janus_monitor_poll_budget_used_ratio{{{S}}}"],
            ),
            ("Reconcile age", "timeseries", "s", [f"janus_monitor_reconcile_age_seconds{{{S}}}"]),
            (
                "Admin request latency p99",
                "timeseries",
                "s",
                [f"janus:admin_request_duration_seconds:p99_5m{{{S}}}"],
            ),
            (
                "Admin requests by verb",
                "timeseries",
                "ops",
                [
                    f"sum by (server, request) (rate(janus_monitor_admin_requests_total{{{S}}}[$__rate_interval]))"
                ],
            ),
            (
                "Rejected events by reason",
                "timeseries",
                "ops",
                ["sum by (reason) (rate(janus_monitor_events_rejected_total[$__rate_interval]))"],
            ),
            ("Tracked state", "timeseries", "none", ["janus_monitor_tracked"]),
            (
                "Last reload successful",
                "stat",
                "none",
                ["janus_monitor_config_last_reload_successful"],
            ),
        ],
    ),
}

# Daemons sharing a broker (amqp): ownership, the connection, the shard queues. Rates are per
# daemon (the instance label of each scrape target).
DASHBOARDS["janus-monitor-fleet"] = (
    "janus-monitor fleet (RabbitMQ)",
    [
        (
            "Owners per Janus (must be 1)",
            "timeseries",
            "none",
            [f"janus:emitter_owners:sum{{{S}}}"],
        ),
        (
            "Shards owned by each daemon",
            "timeseries",
            "none",
            ["sum by (instance) (janus_monitor_shard_owned)"],
        ),
        ("Broker connection", "stat", "none", ["janus_monitor_amqp_connected"]),
        ("Shard backlog", "timeseries", "none", ["janus:amqp_shard_backlog_messages:max"]),
        (
            "Messages consumed/s",
            "timeseries",
            "ops",
            [
                "sum by (instance, outcome) (rate(janus_monitor_amqp_messages_total[$__rate_interval]))"
            ],
        ),
        (
            "Takeovers and hand-backs",
            "timeseries",
            "none",
            [
                "sum by (instance) (increase(janus_monitor_amqp_shard_takeovers_total[$__rate_interval]))",
                "sum by (instance) (increase(janus_monitor_amqp_shard_hand_backs_total[$__rate_interval]))",
            ],
        ),
        (
            "Time without the broker",
            "timeseries",
            "s",
            ["increase(janus_monitor_amqp_disconnected_seconds_total[$__rate_interval])"],
        ),
        ("Fleet members each daemon hears", "timeseries", "none", ["janus_monitor_fleet_members"]),
    ],
)

# Dashboards with data only when daemons consume from a broker: tests/e2e/test_fleet.py
# checks their panels against a Prometheus scraping a real fleet, test_stack.py the others.
BROKER_ONLY = ("janus-monitor-fleet",)

# Metrics whose panels stay empty on a healthy system: tests/e2e/test_stack.py makes each of
# them non-empty with a fault (an ICE failure, stopped video, remediation, a reused handle).
FAULT_ONLY = (
    "janus_ice_failures_total",
    "janus_media_receiving_stopped_total",
    "janus_monitor_remediation_actions_total",
    "janus_handle_reuse_total",
)


def variable(name: str, query: str, *, include_all: bool = True) -> dict[str, Any]:
    return {
        "name": name, "label": name, "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": f"{name}-var"}, "refresh": 2,
        "includeAll": include_all, "multi": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }  # fmt: skip


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    built = []
    for index, (panel_title, kind, unit, queries) in enumerate(panels):
        built.append({
            "id": index + 1, "title": panel_title, "type": kind,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [
                {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": "__auto",
                 **({"instant": True, "format": "table"} if kind == "table" else {})}
                for n, expr in enumerate(queries)
            ],
        })  # fmt: skip
    templating = [
        {"name": "datasource", "label": "datasource", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        variable("server", "label_values(janus_sessions, server)"),
    ]  # fmt: skip
    if any("$room" in q for _, _, _, qs in panels for q in qs):
        templating.append(
            variable(
                "room", 'label_values(janus_videoroom_room_publishers{server=~"$server"}, room)'
            )
        )
    return {
        "uid": uid, "title": title, "tags": ["janus", "janus-monitor"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "panels": built,
        "templating": {"list": templating}, "annotations": {"list": []},
    }  # fmt: skip


def render() -> dict[str, str]:
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    for name, text in render().items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
