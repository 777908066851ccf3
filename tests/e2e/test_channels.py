"""Platform channels end to end: a Shopify webhook, signed as Shopify signs, becomes an
order with the channel's SKUs mapped; a cancellation cancels the order and releases its
stock; an unmapped SKU lands the order in the exception queue instead of being dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.e2e.conftest import Oms, eventually

SHOP_SECRET = "shpss_e2e_0123456789"


def shopify_order(
    channel_sku: str, *, financial_status: str = "paid", **extra: Any
) -> dict[str, Any]:
    order_id = int(uuid.uuid4().int % 10**15)
    return {
        "id": order_id,
        "name": f"#{order_id % 10000}",
        "email": "jon@example.com",
        "currency": "CNY",
        "financial_status": financial_status,
        "processed_at": datetime.now(UTC).isoformat(),
        "cancelled_at": None,
        "note": "gift wrap please",
        "customer": {
            "id": order_id + 1,
            "email": "jon@example.com",
            "phone": "+8613800000003",
            "first_name": "Jon",
            "last_name": "Snow",
        },
        "line_items": [{"id": 1, "sku": channel_sku, "quantity": 1, "price": "25.00"}],
        "shipping_address": {
            "address1": "1 Demo Road",
            "city": "Shanghai",
            "province_code": "SH",
            "country_code": "CN",
            "zip": "200000",
            "phone": "+8613800000003",
            "name": "Jon Snow",
        },
        "shipping_lines": [{"title": "Standard", "code": "standard"}],
        **extra,
    }


async def deliver(oms: Oms, channel: str, topic: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    digest = hmac.new(SHOP_SECRET.encode(), raw, hashlib.sha256).digest()
    return await oms.http.post(
        f"{oms.gateway}/webhooks/shopify/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "e2e.myshopify.com",
        },
    )


async def shopify_channel(oms: Oms, mapping: dict[str, str]) -> str:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    r = await oms.http.post(
        f"{oms.gateway}/channels", json={"name": name, "type": "shopify", "secret": SHOP_SECRET}
    )
    assert r.status_code == 201, r.text
    r = await oms.http.put(f"{oms.gateway}/channels/{name}/sku-map", json={"mapping": mapping})
    assert r.status_code == 200, r.text
    return name


async def test_a_shopify_order_is_confirmed_with_mapped_skus_then_cancelled(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"SHOP-TEE-M": sku})
    body = shopify_order("SHOP-TEE-M")

    r = await deliver(oms, channel, "orders/create", body)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    ref = r.json()["order_ref"]
    order = await eventually(lambda: oms.find_order(ref), lambda o: o["state"] == "routed")
    assert order["lines"][0]["sku"] == sku

    await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 1)

    cancelled = body | {
        "cancelled_at": datetime.now(UTC).isoformat(),
        "cancel_reason": "customer",
        "updated_at": datetime.now(UTC).isoformat(),
    }
    r = await deliver(oms, channel, "orders/cancelled", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}
    # The order's owner cancelled it and inventory gave the unit back: the gateway's
    # own fact proves nothing.
    order = await eventually(lambda: oms.find_order(ref), lambda o: o["state"] == "cancelled")
    assert order["cancel_reason"] == "customer"
    stock = await eventually(lambda: oms.stock(sku), lambda s: s["reserved"] == 0)
    assert stock["on_hand"] == 5


async def test_an_unmapped_sku_lands_in_the_exception_queue(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"SHOP-KNOWN": sku})
    r = await deliver(oms, channel, "orders/create", shopify_order("SHOP-UNKNOWN"))
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    ref = r.json()["order_ref"]
    order = await eventually(lambda: oms.find_order(ref), lambda o: o["state"] == "exception")
    assert "unknown_sku" in (order["exception_reason"] or "")

    audit = (await oms.http.get(f"{oms.gateway}/channels/{channel}/deliveries")).json()
    assert audit[0]["outcome"] == "accepted_unknown_sku"
    assert audit[0]["detail"] == "unknown_sku_mapping: SHOP-UNKNOWN"
