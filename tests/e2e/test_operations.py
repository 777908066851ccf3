"""What an SRE reads off the running services: Prometheus metrics after a real flow."""

from __future__ import annotations

import re

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
        lambda: oms.find_order(accepted.json()["order_ref"]), lambda o: o["state"] == "confirmed"
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
