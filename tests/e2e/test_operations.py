"""What an SRE reads off the running services: Prometheus metrics after a real flow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.e2e.conftest import Oms, eventually, order_body


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_show_http_traffic_events_and_an_empty_outbox_after_a_flow(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 3})
    accepted = await oms.post_order("web", order_body(sku))
    assert accepted.status_code == 202
    await eventually(
        lambda: oms.find_order(accepted.json()["order_ref"]), lambda o: o["state"] == "routed"
    )

    gateway = (await oms.http.get(f"{oms.gateway}/metrics")).text
    assert (
        sample(
            gateway,
            "oms_http_request_duration_seconds_count",
            route="/webhooks/{channel}",
            status="202",
        )
        >= 1
    )  # type: ignore[operator]

    async def produced_by_gateway() -> float:
        text = (await oms.http.get(f"{oms.gateway}/metrics")).text
        return sample(text, "oms_events_produced_total", topic="oms.channel.orders") or 0.0

    await eventually(produced_by_gateway, lambda n: n >= 1)

    orders = (await oms.http.get(f"{oms.orders}/metrics")).text
    applied = sample(
        orders, "oms_events_consumed_total", topic="oms.channel.orders", outcome="applied"
    )
    assert applied is not None and applied >= 1
    assert sample(orders, "oms_outbox_backlog") is not None
    assert re.search(r'^oms_consumer_lag\{.*group="order-svc"', orders, re.M)
    assert sample(orders, "oms_events_dead_lettered_total", group="order-svc") == 0


MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(oms_[a-z0-9_]+)\b", expr))


def referenced_metrics() -> set[str]:
    """Every metric the shipped alert rules and dashboard query."""
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    names: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            names |= metric_names_in(rule["expr"])
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= metric_names_in(target["expr"])
    return names


def exposes(text: str, name: str) -> bool:
    """``name`` has samples, or is declared (a labelled metric with no samples yet)."""
    base = re.sub(r"_(total|bucket|count|sum)$", "", name)
    return bool(
        re.search(rf"^{name}[{{ ]", text, re.M)
        or re.search(rf"^# TYPE ({base}|{name}) ", text, re.M)
    )


async def test_every_metric_the_dashboard_and_alerts_use_is_exposed(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 3})
    accepted = await oms.post_order("web", order_body(sku))
    assert accepted.status_code == 202
    await eventually(
        lambda: oms.find_order(accepted.json()["order_ref"]), lambda o: o["state"] == "routed"
    )
    texts = [
        (await oms.http.get(f"{base}/metrics")).text
        for base in (oms.orders, oms.inventory, oms.customers, oms.gateway, oms.notifier)
    ]
    wanted = referenced_metrics()
    assert len(wanted) >= 10
    missing = sorted(name for name in wanted if not any(exposes(t, name) for t in texts))
    assert missing == []
