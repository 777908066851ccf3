"""Smart routing and the customer's data on orders, end to end over five real services.

A cold-chain requirement set on the customer (customer-svc) reaches the customer's open
order and its pick list (order-svc) within seconds, and the customer's next order goes to
the cold-chain warehouse although another one is nearer; a tag rule turns a customer with
two cold-chain orders cold-chain sensitive, and their next order is handled as cold chain.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Oms, eventually, order_body

OPERATOR = {"X-Operator": "e2e-operator"}


def to_beijing(sku: str, user: str, **overrides: Any) -> dict[str, Any]:
    """An order shipped to Beijing: WH-BJ is nearer, only WH-SH has the cold chain."""
    body = order_body(sku, customer={"platform_user_id": user, "name": "Han Meimei"}, **overrides)
    body["shipping_address"] = {
        "name": "Han Meimei",
        "region": "CN-BJ",
        "city": "Beijing",
        "line1": "2 Demo Street",
        "postal_code": "100000",
    }
    return body


async def routing_knows_the_warehouses(oms: Oms) -> None:
    async def known() -> dict[str, list[str]]:
        r = await oms.http.get(f"{oms.orders}/routing/warehouses")
        return {w["code"]: w["capabilities"] for w in r.json()} if r.status_code == 200 else {}

    await eventually(known, lambda w: w.get("WH-SH") == ["cold_chain"] and "WH-BJ" in w)


async def picklist(oms: Oms, ref: str) -> dict[str, Any]:
    r = await oms.http.get(f"{oms.orders}/orders/{ref}/picklist")
    if r.status_code in (404, 503):
        return {"delivery_requirements": [], "tags": [], "parcels": []}
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def place_confirmed(oms: Oms, channel: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post the order; wait until it is routed and linked to its customer."""
    r = await oms.post_order(channel, body)
    assert r.status_code == 202, r.text
    ref = r.json()["order_ref"]
    return await eventually(  # type: ignore[no-any-return]
        lambda: oms.find_order(ref),
        lambda o: o["state"] == "routed" and o["customer_id"] is not None,
    )


async def test_a_cold_chain_customer_gets_the_cold_chain_warehouse_and_it_is_on_the_pick_list(
    oms: Oms,
) -> None:
    await routing_knows_the_warehouses(oms)
    sku = await oms.new_sku({"WH-SH": 10, "WH-BJ": 10})
    user = f"cc-{uuid.uuid4().hex[:8]}"

    first = await place_confirmed(oms, "web", to_beijing(sku, user))
    assert first["customer_requirements"] == []

    # The requirement is set on the customer: it reaches the open order's pick list.
    r = await oms.http.patch(
        f"{oms.customers}/customers/{first['customer_id']}",
        json={"delivery_requirements": {"cold_chain": True}},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    pick = await eventually(
        lambda: picklist(oms, first["id"]),
        lambda p: "cold_chain" in p["delivery_requirements"],
        timeout=15,
    )
    assert pick["customer_requirements"] == ["cold_chain"] and pick["order_requirements"] == []
    assert pick["customer_data"]["source"] == "updated"

    # The customer's next order is cold chain from its receipt: it goes to Shanghai's
    # cold-chain warehouse although Beijing's is nearer and holds the stock.
    second = await place_confirmed(oms, "web", to_beijing(sku, user))
    assert [line["warehouse"] for line in second["lines"]] == ["WH-SH"]
    routing = second["routing"]
    assert routing["outcome"] == "routed" and routing["requirements"] == ["cold_chain"]
    assert [c["warehouse"] for c in routing["candidates"]] == ["WH-SH"]  # the only eligible
    assert routing["routed_at"] is not None
    assert [s["warehouse"] for s in routing["shipments"]] == ["WH-SH"]
    pick = await picklist(oms, second["id"])
    assert [p["warehouse"] for p in pick["parcels"]] == ["WH-SH"]
    assert pick["parcels"][0]["lines"] == [{"line_no": 1, "sku": sku, "qty": 1}]
    assert pick["delivery_requirements"] == ["cold_chain"]
    assert pick["customer_data"]["source"] == "receipt"
    assert pick["notes"] == "leave at the door"

    # The first order went where routing sent it (Beijing, nearest) or, when order-svc did
    # not know the new SKU's stock yet, where inventory reserved it: counted either way.
    first_in_shanghai = [line["warehouse"] for line in first["lines"]] == ["WH-SH"]
    stock = {w["warehouse"]: w["reserved"] for w in (await oms.stock(sku))["warehouses"]}
    assert stock["WH-SH"] == 1 + first_in_shanghai

    async def routed_events() -> list[dict[str, Any]]:
        r = await oms.http.get(f"{oms.notifier}/events", params={"limit": 500})
        return [
            e for e in r.json() if e.get("key") == second["id"] and e["event_type"] == "OrderRouted"
        ]

    await eventually(routed_events, lambda events: len(events) == 1)


async def test_after_the_second_cold_chain_order_the_tag_appears_and_the_next_is_cold_chain(
    oms: Oms,
) -> None:
    await routing_knows_the_warehouses(oms)
    rules = (await oms.http.get(f"{oms.customers}/tag-rules")).json()["rules"]
    if not any(rule["tag"] == "cold_chain_sensitive" for rule in rules):
        rule = {
            "name": "e2e-cold-chain",
            "tag": "cold_chain_sensitive",
            "expression": "cold_chain_orders_90d >= 2",
        }
        r = await oms.http.put(
            f"{oms.customers}/tag-rules", json={"rules": [*rules, rule]}, headers=OPERATOR
        )
        assert r.status_code == 200, r.text
    sku = await oms.new_sku({"WH-SH": 10, "WH-BJ": 10})
    user = f"tag-{uuid.uuid4().hex[:8]}"

    first = await place_confirmed(
        oms, "app", to_beijing(sku, user, delivery_requirements=["cold_chain"])
    )
    assert first["customer_tags"] == []
    second = await place_confirmed(
        oms, "app", to_beijing(sku, user, delivery_requirements=["cold_chain"])
    )
    assert [line["warehouse"] for line in second["lines"]] == ["WH-SH"]

    # The second cold-chain order tags the customer; the tag reaches the open orders.
    pick = await eventually(
        lambda: picklist(oms, second["id"]),
        lambda p: "cold_chain_sensitive" in p["tags"],
        timeout=15,
    )
    assert pick["customer_requirements"] == ["cold_chain"]

    # The next order asks for nothing special, and is handled as cold chain.
    third = await place_confirmed(oms, "app", to_beijing(sku, user))
    assert third["delivery_requirements"] == []
    assert third["customer_requirements"] == ["cold_chain"]
    assert "cold_chain_sensitive" in third["customer_tags"]
    assert [line["warehouse"] for line in third["lines"]] == ["WH-SH"]
    assert third["routing"]["requirements"] == ["cold_chain"]
    pick = await picklist(oms, third["id"])
    assert pick["delivery_requirements"] == ["cold_chain"]
    assert "cold_chain_sensitive" in pick["tags"]

    # Without the customer's requirement the same order goes to the nearer warehouse.
    other = await place_confirmed(oms, "app", to_beijing(sku, f"plain-{uuid.uuid4().hex[:8]}"))
    assert [line["warehouse"] for line in other["lines"]] == ["WH-BJ"]
