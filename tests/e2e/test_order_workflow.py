"""Order workflow end to end: front-end orders, operator actions, the credit check.

The shared stack has no credit bureau configured (the check is skipped). The credit
tests start a second, small stack (order-svc, inventory-svc and the fake bureau) with a
2 s budget and its own broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_devstack.specs import FAKE_CREDIT_BUREAU, INVENTORY_SVC, ORDER_SVC
from oms_devstack.stack import Stack
from tests.e2e.conftest import Oms, eventually

OPERATOR = {"X-Operator": "e2e-operator"}
BUDGET_S = 2.0


def front_end_order(sku: str, qty: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "web",
        "channel_order_id": f"FE-{uuid.uuid4().hex[:10]}",
        "customer": {"platform_user_id": f"u-{uuid.uuid4().hex[:6]}", "name": "Han Meimei"},
        "lines": [{"line_no": 1, "sku": sku, "qty": qty, "unit_price": "9.90"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai", "line1": "2 Demo Road"},
    }
    body.update(overrides)
    return body


async def test_a_front_end_order_is_confirmed_once_and_cancelling_releases_its_stock(
    oms: Oms,
) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    body = front_end_order(sku, qty=2)
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    first = await oms.http.post(f"{oms.orders}/orders", json=body, headers=key)
    again = await oms.http.post(f"{oms.orders}/orders", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    order_id = first.json()["id"]

    await eventually(lambda: oms.find_order(order_id), lambda o: o["state"] == "routed")
    assert (await oms.stock(sku))["reserved"] == 2

    r = await oms.http.post(
        f"{oms.orders}/orders/{order_id}/cancel", json={"reason": "changed mind"}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["actor"] == "e2e-operator"
    await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 0)
    assert (await oms.stock(sku))["available"] == 5


async def test_an_order_is_shipped_and_delivered_and_shipping_an_unconfirmed_one_is_refused(
    oms: Oms,
) -> None:
    sku = await oms.new_sku({"WH-SH": 3})
    r = await oms.http.post(f"{oms.orders}/orders", json=front_end_order(sku))
    order_id = r.json()["id"]
    ship = {"carrier": "SF", "tracking_number": "SF-E2E-1"}
    early = await oms.http.post(f"{oms.orders}/orders/{order_id}/ship", json=ship, headers=OPERATOR)
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")

    await eventually(lambda: oms.find_order(order_id), lambda o: o["state"] == "routed")
    for action, payload in (("pick", None), ("ship", ship), ("deliver", None)):
        r = await oms.http.post(
            f"{oms.orders}/orders/{order_id}/{action}", json=payload, headers=OPERATOR
        )
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "delivered"
    # The shipment takes the reserved units off the shelf.
    await eventually(lambda: oms.stock(sku), lambda s: (s["on_hand"], s["reserved"]) == (2, 0))


async def test_an_order_over_the_review_amount_waits_for_an_operator_then_is_routed(
    oms: Oms,
) -> None:
    sku = await oms.new_sku({"WH-SH": 3})
    lines = [{"line_no": 1, "sku": sku, "qty": 2, "unit_price": "6000.00"}]  # over 10000
    r = await oms.http.post(f"{oms.orders}/orders", json=front_end_order(sku, lines=lines))
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    held = await eventually(lambda: oms.find_order(order_id), lambda o: o["state"] == "exception")
    assert (held["history"][-1]["actor"], held["history"][-1]["reason"]) == (
        "rule:hold_amount",
        "manual_review (amount 12000.00 over 10000)",
    )
    assert (await oms.stock(sku))["reserved"] == 0  # no stock asked for while held

    queue = await oms.http.get(
        f"{oms.orders}/exceptions", params={"cause": "manual_review", "limit": 500}
    )
    [item] = [i for i in queue.json()["items"] if i["order_id"] == order_id]
    r = await oms.http.post(
        f"{oms.orders}/exceptions/{item['id']}/resolve",
        json={"action": "release", "note": "known buyer"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    done = await eventually(lambda: oms.find_order(order_id), lambda o: o["state"] == "routed")
    assert [h["to_state"] for h in done["history"]] == [
        "received",
        "paid",
        "exception",
        "paid",
        "reserved",
        "confirmed",
        "routed",
    ]
    assert (await oms.stock(sku))["reserved"] == 2


# -- the credit check against the fake bureau ------------------------------------------


@pytest.fixture(scope="module")
async def credit_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    # Its own broker: on the session's broker its consumer groups (same names as the
    # shared stack's) would share partitions with the shared stack's services.
    stack = Stack.for_tests(
        artifacts_dir / "e2e-credit-stack",
        services=(ORDER_SVC, INVENTORY_SVC, FAKE_CREDIT_BUREAU),
    )
    # The bureau's port is only known once the test stack has picked its free ports.
    stack.config.service_env["order-svc"] = {
        "CREDIT_CHECK_URL": stack.url("credit-bureau") + "/credit/check",
        # Front-end orders are prepaid retail ones, which the rule lets skip the check.
        "CREDIT_CHECK_EVERY_ORDER": "true",
        "CREDIT_CHECK_BUDGET_S": str(BUDGET_S),
        "CREDIT_CHECK_ATTEMPT_TIMEOUT_S": "1.5",
        "CREDIT_CHECK_BACKOFF_INITIAL_S": "0.05",
        "CREDIT_CHECK_BACKOFF_MAX_S": "0.2",
    }
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


async def credit_order(stack: Stack, http: httpx.AsyncClient, sku: str) -> str:
    r = await http.post(f"{stack.url('order-svc')}/orders", json=front_end_order(sku))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "credit_check"
    return str(r.json()["id"])


async def test_a_hanging_bureau_never_holds_an_order_past_the_budget(
    credit_stack: Stack, http: httpx.AsyncClient
) -> None:
    inventory, orders = credit_stack.url("inventory-svc"), credit_stack.url("order-svc")
    bureau = credit_stack.url("credit-bureau")
    wh = {"code": "WH-SH", "name": "SH", "region": "CN-SH", "latitude": 31.2, "longitude": 121.5}
    assert (await http.post(f"{inventory}/warehouses", json=wh)).status_code in (201, 409)
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    r = await http.post(f"{inventory}/skus", json={"sku": sku, "name": sku, "attributes": {}})
    assert r.status_code == 201, r.text
    r = await http.post(
        f"{inventory}/stock/receipts",
        json={"sku": sku, "warehouse": "WH-SH", "qty": 10, "reason": "e2e"},
        headers={"X-Operator": "e2e"},
    )
    assert r.status_code == 201, r.text

    # Answering: the normal path, all the way to routed.
    await http.post(f"{bureau}/control", json={"mode": "ok", "delay_s": 0.5})
    order_id = await credit_order(credit_stack, http, sku)

    async def order(ref: str) -> dict[str, Any]:
        return (await http.get(f"{orders}/orders/{ref}")).json()  # type: ignore[no-any-return]

    done = await eventually(lambda: order(order_id), lambda o: o["state"] == "routed")
    assert [h["to_state"] for h in done["history"]] == [
        "received",
        "paid",
        "credit_check",
        "paid",
        "reserved",
        "confirmed",
        "routed",
    ]
    assert done["credit_degraded"] is False

    # Hanging: every order leaves credit_check at the budget, flagged, and is routed.
    await http.post(f"{bureau}/control", json={"mode": "hang"})
    refs = await asyncio.gather(*(credit_order(credit_stack, http, sku) for _ in range(3)))
    views = [
        await eventually(partial(order, ref), lambda o: o["state"] != "credit_check", 30)
        for ref in refs
    ]
    assert all(v["credit_degraded"] for v in views)
    for ref in refs:
        final = await eventually(partial(order, ref), lambda o: o["state"] == "routed")
        left = next(h for h in final["history"] if h["from_state"] == "credit_check")
        entered = next(h for h in final["history"] if h["to_state"] == "credit_check")
        seconds = (
            datetime.fromisoformat(left["at"]) - datetime.fromisoformat(entered["at"])
        ).total_seconds()
        assert seconds <= BUDGET_S + 1.5, seconds
    await http.post(f"{bureau}/control/reset")
