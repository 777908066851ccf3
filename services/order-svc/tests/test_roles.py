"""Roles in AUTH_MODE=jwt on order-svc, on a real PostgreSQL: a cancel without
``orders:write`` is 403 and leaves the order as it was; with it the order is cancelled
and the token's subject is the recorded actor; no token is 401; reads need ``orders:read``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from oms_servicekit.testing import MigratedDatabase

#: The conftest's ``mint`` fixture: headers with a token its ``jwt_api`` app trusts.
Mint = Callable[..., dict[str, str]]
ACTOR = "carol@example.com"


def new_order() -> dict[str, Any]:
    return {
        "channel": "web",
        "channel_order_id": f"FE-{uuid.uuid4().hex[:8]}",
        "customer": {"platform_user_id": "u-1", "name": "Li Lei"},
        "lines": [{"line_no": 1, "sku": "SKU-1", "qty": 1, "unit_price": "5.00"}],
        "currency": "CNY",
        "paid": True,
        "shipping_address": {"region": "CN-SH", "city": "Shanghai"},
    }


async def test_placing_an_order_needs_orders_write(jwt_api: httpx.AsyncClient, mint: Mint) -> None:
    assert (await jwt_api.post("/orders", json=new_order())).status_code == 401
    refused = await jwt_api.post("/orders", json=new_order(), headers=mint("orders:read"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    listed = await jwt_api.get("/orders", headers=mint("orders:read"))
    assert listed.status_code == 200 and listed.json()["total"] == 0
    placed = await jwt_api.post("/orders", json=new_order(), headers=mint("orders:write"))
    assert placed.status_code == 201, placed.text


async def test_an_action_without_its_role_is_403_and_changes_nothing(
    jwt_api: httpx.AsyncClient, db: MigratedDatabase, mint: Mint
) -> None:
    placed = await jwt_api.post("/orders", json=new_order(), headers=mint("orders:write"))
    order_id = placed.json()["id"]
    outbox_before = len(await db.outbox_rows())
    url = f"/orders/{order_id}/cancel"

    assert (await jwt_api.post(url, json={"reason": "x"})).status_code == 401
    refused = await jwt_api.post(url, json={"reason": "x"}, headers=mint("orders:read"))
    assert refused.status_code == 403, refused.text
    assert "orders:write" in refused.json()["detail"]
    after = await jwt_api.get(f"/orders/{order_id}", headers=mint("orders:read"))
    assert after.json()["state"] == "paid"
    assert len(await db.outbox_rows()) == outbox_before

    writer = mint("orders:write", sub=ACTOR)
    done = await jwt_api.post(url, json={"reason": "asked"}, headers=writer)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "cancelled"
    assert done.json()["history"][-1]["actor"] == ACTOR


async def test_reads_need_orders_read_in_jwt_mode(jwt_api: httpx.AsyncClient, mint: Mint) -> None:
    assert (await jwt_api.get("/orders")).status_code == 401
    assert (await jwt_api.get("/orders", headers=mint("inventory:adjust"))).status_code == 403
