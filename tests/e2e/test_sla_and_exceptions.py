"""SLA breaches end to end: a held order raises exactly one SlaBreached on the broker.

A small stack of its own (order-svc and inventory-svc, its own broker) whose order-svc
gives the "sla-fast" channel a 3 s review SLA (normal orders) and runs its scheduler
five times a second; every other channel keeps the 2 h default. Orders for a SKU without
stock are rejected by inventory and stay held in the exception queue, so their review
deadline passes. The alerts topic itself is read (a second client, from the beginning),
so "exactly one" is what any consumer sees, not what a service chose to record.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from oms_contracts.topics import Topic
from oms_devstack.specs import INVENTORY_SVC, ORDER_SVC
from oms_devstack.stack import Stack
from tests.e2e.conftest import eventually

OPERATOR = {"X-Operator": "e2e-operator"}
FAST = "sla-fast"
SLA_S = 3


@pytest.fixture(scope="module")
async def sla_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    # Its own broker: the shared stack's order-svc (same consumer group) would otherwise
    # share partitions, and the alerts counted here must come from this order-svc alone.
    stack = Stack.for_tests(artifacts_dir / "e2e-sla-stack", services=(ORDER_SVC, INVENTORY_SVC))
    stack.config.service_env["order-svc"] = {
        "SLA_DEADLINES_S": json.dumps({"review": {FAST: {"normal": SLA_S}}}),
        "SLA_SCHEDULER_INTERVAL_S": "0.2",
    }
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


def read_alerts(bootstrap: str, idle_s: float = 2.0) -> list[dict[str, Any]]:
    """Every message on the alerts topic, from the beginning, as JSON envelopes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sla-check-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    topic = Topic.ALERTS.value
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign(
        [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.topics[topic].partitions]
    )
    messages: list[dict[str, Any]] = []
    idle = 0.0
    try:
        while idle < idle_s:
            msg = consumer.poll(0.25)
            if msg is None:
                idle += 0.25
                continue
            if msg.error():
                raise AssertionError(f"consumer error: {msg.error()}")
            idle = 0.0
            messages.append(json.loads(msg.value()))
    finally:
        consumer.close()
    return messages


async def alert_counts(stack: Stack) -> Counter[tuple[str, str]]:
    """(event type, order id) -> how many times it is on the alerts topic."""
    messages = await asyncio.to_thread(read_alerts, stack.kafka_bootstrap)
    return Counter((m["event_type"], str(m["payload"].get("order_id"))) for m in messages)


async def held_order(http: httpx.AsyncClient, stack: Stack, sku: str, channel: str) -> str:
    """An order inventory rejects (no stock): it waits in the exception queue."""
    body = {
        "channel": channel,
        "channel_order_id": f"SLA-{uuid.uuid4().hex[:10]}",
        "customer": {"platform_user_id": f"u-{uuid.uuid4().hex[:6]}", "name": "Han Meimei"},
        "lines": [{"line_no": 1, "sku": sku, "qty": 1, "unit_price": "9.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai", "line1": "2 Demo Road"},
    }
    orders = stack.url("order-svc")
    r = await http.post(f"{orders}/orders", json=body)
    assert r.status_code == 201, r.text
    order_id = str(r.json()["id"])

    async def state() -> Any:
        return (await http.get(f"{orders}/orders/{order_id}")).json()["state"]

    await eventually(state, lambda s: s == "exception")
    return order_id


async def exceptions_of(http: httpx.AsyncClient, stack: Stack, order_id: str) -> list[str]:
    r = await http.get(
        f"{stack.url('order-svc')}/exceptions", params={"state": "all", "limit": 500}
    )
    assert r.status_code == 200, r.text
    return sorted(i["cause"] for i in r.json()["items"] if i["order_id"] == order_id)


async def test_an_sla_breach_raises_exactly_one_sla_breached(
    sla_stack: Stack, http: httpx.AsyncClient
) -> None:
    inventory, orders = sla_stack.url("inventory-svc"), sla_stack.url("order-svc")
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    r = await http.post(f"{inventory}/skus", json={"sku": sku, "name": sku, "attributes": {}})
    assert r.status_code == 201, r.text

    first = await held_order(http, sla_stack, sku, FAST)
    slow = await held_order(http, sla_stack, sku, "web")  # 2 h: never due in this test
    await eventually(
        lambda: exceptions_of(http, sla_stack, first),
        lambda causes: causes == ["sla_breached", "stock_rejected"],
    )
    # The scheduler keeps running: a second order's breach, seen after the first's,
    # proves it ran many times since without alerting the first order again.
    second = await held_order(http, sla_stack, sku, FAST)
    await eventually(
        lambda: alert_counts(sla_stack),
        lambda counts: counts[("SlaBreached", second)] >= 1,
    )
    counts = await alert_counts(sla_stack)
    assert counts[("SlaBreached", first)] == 1
    assert counts[("SlaBreached", second)] == 1
    assert counts[("SlaAtRisk", first)] <= 1
    assert counts[("SlaBreached", slow)] == counts[("SlaAtRisk", slow)] == 0
    assert await exceptions_of(http, sla_stack, slow) == ["stock_rejected"]

    metrics = (await http.get(f"{orders}/metrics")).text
    assert 'oms_open_exceptions{cause="sla_breached",service="order-svc"} 2.0' in metrics
    assert 'oms_sla_overdue_orders{service="order-svc",stage="review"} 2.0' in metrics

    # The board's view: the breached orders first, with negative time left.
    board = (await http.get(f"{orders}/sla/open", params={"limit": 2})).json()
    assert {i["order_id"] for i in board["items"]} == {first, second}
    assert all(i["breached"] and i["seconds_left"] < 0 for i in board["items"])

    # An operator cancels the first order: both of its exceptions close, and the report
    # counts its review as breached.
    queue = (await http.get(f"{orders}/exceptions", params={"cause": "sla_breached"})).json()
    breach = next(i for i in queue["items"] if i["order_id"] == first)
    r = await http.post(
        f"{orders}/exceptions/{breach['id']}/resolve",
        json={"action": "cancel", "note": "no stock expected"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    assert r.json()["order_state"] == "cancelled"
    assert await exceptions_of(http, sla_stack, first) == ["sla_breached", "stock_rejected"]
    open_now = (await http.get(f"{orders}/exceptions")).json()["items"]
    assert first not in {i["order_id"] for i in open_now}

    report = (await http.get(f"{orders}/reports/sla")).json()
    fast_review = next(
        s
        for s in report["stages"]
        if (s["kind"], s["stage"], s["channel"], s["order_class"])
        == ("sla", "review", FAST, "normal")
    )
    assert fast_review["breached"] == 2 and fast_review["breach_rate"] == 1.0
