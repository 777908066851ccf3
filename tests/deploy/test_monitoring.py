"""The Prometheus alert rules and the Grafana dashboard shipped in deploy/monitoring.

Structure is checked here; that every metric they query is really exposed is checked end
to end (tests/e2e/test_operations.py) against the running services.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
REQUIRED_ALERTS = {
    "OmsConsumerLagHigh",
    "OmsOutboxStale",
    "OmsDeadLetterGrowth",
    "OmsSlaBreachRateHigh",
}


def test_alert_rules_are_well_formed_and_cover_lag_outbox_dlq_and_sla() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    seen: set[str] = set()
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["expr"].strip() and rule["labels"]["severity"] in {
                "info",
                "warning",
                "critical",
            }
            assert rule["annotations"]["summary"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            seen.add(rule["alert"])
    assert seen >= REQUIRED_ALERTS


def test_dashboard_is_grafana_json_with_unique_ids_and_no_overlapping_panels() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, panel["title"]
        cells |= mine
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
