"""The first business flow, end to end over HTTP against five real services.

A channel posts a signed order -> order-svc creates it -> inventory-svc reserves the
stock -> order-svc confirms it; customer-svc links the customer; notifier records it all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.e2e.conftest import Oms, eventually, order_body


async def test_a_signed_paid_order_is_confirmed_with_its_stock_reserved_and_history(
    oms: Oms,
) -> None:
    sku = await oms.new_sku({"WH-SH": 10})
    body = order_body(sku, qty=2, delivery_requirements=["cold_chain"])

    r = await oms.post_order("web", body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    ref = r.json()["order_ref"]

    order = await eventually(lambda: oms.find_order(ref), lambda o: o["state"] == "routed")
    assert [h["to_state"] for h in order["history"]] == [
        "received",
        "paid",
        "reserved",
        "confirmed",
        "routed",
    ]
    assert all(h["at"] for h in order["history"])
    assert order["channel"] == "web" and order["channel_order_id"] == body["channel_order_id"]
    assert order["lines"][0]["sku"] == sku and order["lines"][0]["warehouse"] == "WH-SH"
    assert order["delivery_requirements"] == ["cold_chain"]

    stock = await oms.stock(sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 2, 8)

    order = await eventually(lambda: oms.find_order(ref), lambda o: o["customer_id"] is not None)
    listed = (
        await oms.http.get(f"{oms.orders}/orders", params={"channel": "web", "status": "routed"})
    ).json()
    assert ref in [o["id"] for o in listed["items"]]

    async def events_of_order() -> list[str]:
        r = await oms.http.get(f"{oms.notifier}/events", params={"limit": 500})
        return [e["event_type"] for e in r.json() if e.get("key") == ref]

    seen = await eventually(events_of_order, lambda types: "OrderConfirmed" in types)
    assert {"OrderReceived", "OrderCreated", "OrderPaid", "StockReserved"} <= set(seen)


async def test_the_same_channel_order_twice_is_one_order(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    body = order_body(sku)
    first = await oms.post_order("app", body)
    again = await oms.post_order("app", body)
    assert first.status_code == 202
    assert again.status_code == 200, again.text
    assert again.json() == {"order_ref": first.json()["order_ref"], "status": "duplicate"}

    await eventually(
        lambda: oms.find_order(first.json()["order_ref"]), lambda o: o["state"] == "routed"
    )
    await asyncio.sleep(1)  # give a wrongly created second order time to show up
    assert (await oms.stock(sku))["reserved"] == 1


async def test_bad_deliveries_are_refused_and_create_nothing(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    body = order_body(sku)

    def problem(r: Any, status: int) -> dict[str, Any]:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return r.json()  # type: ignore[no-any-return]

    problem(await oms.post_order("tmall", body, secret="wrong-secret-456"), 401)
    problem(await oms.post_order("tmall", body, signature="t=1,v1=deadbeef"), 401)
    problem(await oms.post_order("tmall", body, timestamp=int(time.time()) - 600), 401)
    missing = await oms.http.post(f"{oms.gateway}/webhooks/tmall", json=body)
    problem(missing, 401)
    problem(await oms.post_order("no-such-channel", body), 404)

    invalid = order_body(sku, lines=[{"sku": sku, "qty": 0, "unit_price": "1.00"}])
    err = problem(await oms.post_order("tmall", invalid), 422)
    assert err["field"] == "lines.0.qty"
    assert any(e["field"] == "lines.0.qty" for e in err["errors"])
    err = problem(await oms.post_order("tmall", b'{"channel_order_id": '), 422)

    # The one valid delivery of this order is still new: nothing before it was recorded.
    accepted = await oms.post_order("tmall", body)
    assert accepted.status_code == 202, accepted.text
    await eventually(
        lambda: oms.find_order(accepted.json()["order_ref"]), lambda o: o["state"] == "routed"
    )
    assert (await oms.stock(sku))["reserved"] == 1


async def test_fifty_concurrent_orders_for_twenty_units_reserve_exactly_twenty(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 12, "WH-BJ": 8})
    bodies = [("web" if i % 2 else "app", order_body(sku)) for i in range(50)]
    responses = await asyncio.gather(*(oms.post_order(ch, b) for ch, b in bodies))
    assert [r.status_code for r in responses] == [202] * 50
    refs = [r.json()["order_ref"] for r in responses]

    async def states() -> list[str]:
        return [o["state"] for o in await asyncio.gather(*(oms.find_order(ref) for ref in refs))]

    final = await eventually(states, lambda s: all(x in ("routed", "exception") for x in s), 60)
    assert final.count("routed") == 20
    assert final.count("exception") == 30
    stock = await oms.stock(sku)
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (20, 20, 0)
    rejected = [
        o for o in await asyncio.gather(*(oms.order(r) for r in refs)) if o["state"] == "exception"
    ]
    assert all("insufficient" in (o["exception_reason"] or "") for o in rejected)
