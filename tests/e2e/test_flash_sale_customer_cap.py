"""Issue 11 ("Abuse"), end to end: a per-customer cap per SKU in a flash sale.

A SKU limited to one unit per customer: a buyer's first order is reserved and routed,
the same buyer's second order (same channel account) is refused with ``customer_limit``
and waits in order-svc's exception queue saying why, and another buyer is unaffected.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body

SETTLED = ("routed", "exception")


def buyer(platform_user_id: str) -> dict[str, Any]:
    return {"platform_user_id": platform_user_id, "name": "Li Lei", "phone": "+8613800000001"}


async def place_and_settle(oms: Oms, body: dict[str, Any]) -> dict[str, Any]:
    r = await oms.post_order("live", body)
    assert r.status_code == 202, r.text
    ref = r.json()["order_ref"]
    return await eventually(  # type: ignore[no-any-return]
        lambda: oms.find_order(ref), lambda o: o["state"] in SETTLED, timeout=60
    )


async def test_a_buyers_second_order_over_the_cap_waits_in_the_exception_queue(
    oms: Oms,
) -> None:
    sku = await oms.new_sku({"WH-SH": 10})
    r = await oms.http.put(f"{oms.inventory}/skus/{sku}/policy", json={"max_per_customer": 1})
    assert r.status_code == 200, r.text
    assert r.json()["max_per_customer"] == 1
    ana, bo = f"ana-{sku}", f"bo-{sku}"

    first = await place_and_settle(oms, order_body(sku, customer=buyer(ana)))
    second = await place_and_settle(oms, order_body(sku, customer=buyer(ana)))
    other = await place_and_settle(oms, order_body(sku, customer=buyer(bo)))

    assert (first["state"], second["state"], other["state"]) == ("routed", "exception", "routed")
    assert second["exception_reason"] == (
        f"customer_limit ({sku}: 1 asked, this customer may take 0 more)"
    )
    r = await oms.http.get(f"{oms.orders}/exceptions", params={"cause": "customer_limit"})
    assert r.status_code == 200, r.text
    queued = [item for item in r.json()["items"] if item["order_id"] == second["id"]]
    assert [(i["cause"], i["detail"]) for i in queued] == [
        ("customer_limit", f"{sku}: 1 asked, this customer may take 0 more")
    ]
    stock = await oms.stock(sku)
    assert (stock["on_hand"], stock["reserved"]) == (10, 2)
    await assert_consistent(oms)
