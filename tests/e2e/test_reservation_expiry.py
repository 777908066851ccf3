"""Reservations that match the order, on a stack whose holds expire after 3 seconds.

The inventory sweeper runs on its real schedule. A confirmed order keeps its stock however
long the warehouse takes; a hold for an order that was never confirmed expires, inventory
releases it on its own, and order-svc does not go on as if it still had the stock: the
order lands in the exception queue as ``reservation_lost`` (and the notifier alerts),
where retrying asks for the stock again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oms_devstack.stack import Stack
from order_svc.domain.workflow import DEFAULT_RULES
from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body

TTL_S = 3


@pytest.fixture(scope="module")
async def expiry_oms(artifacts_dir: Path) -> AsyncIterator[Oms]:
    # Its own broker: on the session's broker its consumer groups (same names as the
    # shared stack's) would share partitions with the shared stack's services.
    stack = Stack.for_tests(
        artifacts_dir / "e2e-expiry-stack",
        service_env={"inventory-svc": {"RESERVATION_TTL_S": str(TTL_S), "SWEEP_INTERVAL_S": "0.5"}},
    )
    await stack.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            oms = Oms(stack, http)
            await oms.setup_catalogue()
            # Orders of the "app" channel wait for a person's confirmation once reserved.
            rules: list[dict[str, Any]] = [
                r | {"condition": "channel != 'app'"} if r["name"] == "confirm_reserved" else r
                for r in DEFAULT_RULES
            ]
            r = await http.put(
                f"{oms.orders}/workflow/rules",
                json={"rules": rules},
                headers={"X-Operator": "e2e"},
            )
            assert r.status_code == 200, r.text
            yield oms
    finally:
        await stack.stop(drop_databases=True)


async def test_a_confirmed_order_keeps_its_stock_and_an_unconfirmed_hold_expires(
    expiry_oms: Oms,
) -> None:
    oms = expiry_oms
    sku = await oms.new_sku({"WH-SH": 10})
    confirmed = (await oms.post_order("web", order_body(sku, 2))).json()["order_ref"]
    held = (await oms.post_order("app", order_body(sku, 3))).json()["order_ref"]
    await eventually(lambda: oms.find_order(confirmed), lambda o: o["state"] == "routed")
    await eventually(lambda: oms.find_order(held), lambda o: o["state"] == "reserved")
    await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 5)

    # Well past the TTL: the unconfirmed hold is gone, the confirmed order's stock is not.
    await asyncio.sleep(TTL_S + 3)
    stock = await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 2)
    assert stock["on_hand"] == 10
    lost = await eventually(lambda: oms.find_order(held), lambda o: o["state"] == "exception")
    assert lost["exception_reason"].startswith("reservation_lost")
    assert (await oms.order(confirmed))["state"] == "routed"

    r = await oms.http.get(f"{oms.inventory}/ledger", params={"sku": sku, "limit": 100})
    releases = [e for e in r.json()["items"] if e["kind"] == "release"]
    assert [(e["order_id"], e["reason"], e["delta_reserved"]) for e in releases] == [
        (held, "expired", -3)
    ]

    async def alerts() -> list[dict[str, Any]]:
        r = await oms.http.get(f"{oms.notifier}/alerts", params={"limit": 50})
        return [a for a in r.json() if a["subject"] == held]

    found = await eventually(alerts, bool)
    assert found[0]["details"]["cause"] == "reservation_lost"
    await assert_consistent(oms)

    # Retrying the exception asks for the stock again: reserved once more, consistent.
    r = await oms.http.get(
        f"{oms.orders}/exceptions", params={"cause": "reservation_lost", "limit": 50}
    )
    [exception] = [e for e in r.json()["items"] if e["order_id"] == held]
    r = await oms.http.post(
        f"{oms.orders}/exceptions/{exception['id']}/resolve",
        json={"action": "retry", "note": "stock is there"},
        headers={"X-Operator": "e2e"},
    )
    assert r.status_code == 200, r.text

    async def reservations_of_held() -> int:
        r = await oms.http.get(f"{oms.inventory}/ledger", params={"sku": sku, "limit": 100})
        return sum(
            1 for e in r.json()["items"] if e["kind"] == "reservation" and e["order_id"] == held
        )

    # Reserved a second time (unconfirmed again, so this hold expires again in turn).
    await eventually(reservations_of_held, lambda n: n == 2)
