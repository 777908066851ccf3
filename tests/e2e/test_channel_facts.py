"""What a channel says later about an order reaches the order's owner, through the gateway.

Shopify, WooCommerce and the generic webhook, signed as each platform signs: an order paid
later is reserved and routed; cancelled before shipment it is cancelled and its stock
released (with an alert); cancelled after shipment it stays shipped and a person gets a
``cancelled_after_shipment`` exception, nothing released twice; duplicates, older versions
and a "paid" arriving before "created" change nothing twice. Each test looks at the
order's state, the stock row and the ledger, and ends with the cross-service consistency
check empty: the gateway's own events prove nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body
from tests.e2e.test_channels import deliver, shopify_channel, shopify_order

WOO_SECRET = "wc_e2e_secret_0123"
T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    """A channel timestamp (the body's own ``updated_at``), minutes after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat()


async def settle(oms: Oms, ref: str, state: str) -> dict[str, Any]:
    return await eventually(lambda: oms.find_order(ref), lambda o: o["state"] == state)  # type: ignore[no-any-return]


async def ledger(oms: Oms, sku: str) -> list[tuple[str, int, int]]:
    """(kind, on hand change, reserved change) of every stock change of ``sku``."""
    r = await oms.http.get(f"{oms.inventory}/ledger", params={"sku": sku, "limit": 1000})
    assert r.status_code == 200, r.text
    return [(e["kind"], e["delta_on_hand"], e["delta_reserved"]) for e in r.json()["items"]]


async def stock_is(oms: Oms, sku: str, on_hand: int, reserved: int) -> None:
    await eventually(
        lambda: oms.stock(sku), lambda s: (s["on_hand"], s["reserved"]) == (on_hand, reserved)
    )


async def exceptions_of(oms: Oms, ref: str, cause: str) -> list[dict[str, Any]]:
    r = await oms.http.get(
        f"{oms.orders}/exceptions", params={"cause": cause, "state": "all", "limit": 500}
    )
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["order_id"] == ref]


async def alerts_about(oms: Oms, ref: str) -> list[dict[str, Any]]:
    r = await oms.http.get(f"{oms.notifier}/alerts", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [a for a in r.json() if a["subject"] == ref]


async def act(oms: Oms, ref: str, action: str, **body: Any) -> None:
    r = await oms.http.post(
        f"{oms.orders}/orders/{ref}/{action}", json=body or None, headers={"X-Operator": "e2e"}
    )
    assert r.status_code == 200, r.text


def reserved_lines(rows: list[tuple[str, int, int]]) -> int:
    return sum(1 for kind, _, _ in rows if kind == "reservation")


def released_lines(rows: list[tuple[str, int, int]]) -> int:
    return sum(1 for kind, _, _ in rows if kind == "release")


# -- Shopify ---------------------------------------------------------------------------------


async def test_shopify_paid_later_is_reserved_and_routed(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"TEE": sku})
    pending = shopify_order("TEE", financial_status="pending", updated_at=at(0))
    r = await deliver(oms, channel, "orders/create", pending)
    ref = r.json()["order_ref"]
    await settle(oms, ref, "pending_payment")
    await stock_is(oms, sku, 5, 0)

    paid = pending | {"financial_status": "paid", "updated_at": at(5)}
    r = await deliver(oms, channel, "orders/paid", paid)
    assert r.json() == {"status": "updated", "order_ref": ref}
    order = await settle(oms, ref, "routed")
    assert order["paid_at"] is not None
    await stock_is(oms, sku, 5, 1)
    assert reserved_lines(await ledger(oms, sku)) == 1
    await assert_consistent(oms)


async def test_shopify_cancelled_before_shipment_cancels_and_releases(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"TEE": sku})
    body = shopify_order("TEE", updated_at=at(0))
    ref = (await deliver(oms, channel, "orders/create", body)).json()["order_ref"]
    await settle(oms, ref, "routed")
    await stock_is(oms, sku, 5, 1)

    cancelled = body | {"cancelled_at": at(9), "cancel_reason": "customer", "updated_at": at(9)}
    r = await deliver(oms, channel, "orders/cancelled", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}
    order = await settle(oms, ref, "cancelled")
    assert order["cancel_reason"] == "customer"
    assert order["history"][-1]["actor"] == f"channel:{channel}"
    await stock_is(oms, sku, 5, 0)
    rows = await ledger(oms, sku)
    assert reserved_lines(rows) == 1 and released_lines(rows) == 1
    alerts = await eventually(lambda: alerts_about(oms, ref), bool)
    assert alerts[0]["alert_type"] == "channel_cancelled"

    # The same cancellation again (a retry with a new webhook id) releases nothing more.
    r = await deliver(oms, channel, "orders/cancelled", cancelled)
    assert r.json()["status"] == "duplicate"
    await stock_is(oms, sku, 5, 0)
    assert released_lines(await ledger(oms, sku)) == 1
    await assert_consistent(oms)


async def test_shopify_cancelled_after_shipment_goes_to_a_person(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"TEE": sku})
    body = shopify_order("TEE", updated_at=at(0))
    ref = (await deliver(oms, channel, "orders/create", body)).json()["order_ref"]
    await settle(oms, ref, "routed")
    await act(oms, ref, "pick")
    await act(oms, ref, "ship", carrier="SF", tracking_number="SF123")
    await stock_is(oms, sku, 4, 0)  # the parcel left: on hand and reserved both went

    cancelled = body | {"cancelled_at": at(30), "cancel_reason": "customer", "updated_at": at(30)}
    r = await deliver(oms, channel, "orders/cancelled", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}
    found = await eventually(lambda: exceptions_of(oms, ref, "cancelled_after_shipment"), bool)
    assert found[0]["state"] == "open" and found[0]["order_state"] == "shipped"
    assert (await oms.order(ref))["state"] == "shipped"
    await stock_is(oms, sku, 4, 0)
    rows = await ledger(oms, sku)
    assert released_lines(rows) == 0, rows  # nothing released twice (nor once)
    await assert_consistent(oms)


async def test_shopify_stale_duplicate_and_paid_before_created(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"TEE": sku})
    pending = shopify_order("TEE", financial_status="pending", updated_at=at(0))
    paid = pending | {"financial_status": "paid", "updated_at": at(2)}

    # Shopify's orders/paid overtakes orders/create: the order is born paid ...
    r = await deliver(oms, channel, "orders/paid", paid)
    assert r.json()["status"] == "accepted"
    ref = r.json()["order_ref"]
    await settle(oms, ref, "routed")
    # ... and the late orders/create (older) and a retry of orders/paid change nothing.
    r = await deliver(oms, channel, "orders/create", pending)
    assert r.json() == {"status": "duplicate", "order_ref": ref}
    r = await deliver(oms, channel, "orders/paid", paid)
    assert r.json() == {"status": "duplicate", "order_ref": ref}
    # An older cancellation (it was undone on the shop since) must not cancel it either.
    stale = pending | {"cancelled_at": at(1), "updated_at": at(1)}
    r = await deliver(oms, channel, "orders/cancelled", stale)
    assert r.json() == {"status": "duplicate", "order_ref": ref}

    await stock_is(oms, sku, 5, 1)
    assert (await oms.order(ref))["state"] == "routed"
    rows = await ledger(oms, sku)
    assert reserved_lines(rows) == 1 and released_lines(rows) == 0
    audit = (await oms.http.get(f"{oms.gateway}/channels/{channel}/deliveries")).json()
    assert [a["outcome"] for a in reversed(audit)] == ["accepted", "stale", "duplicate", "stale"]
    await assert_consistent(oms)


async def test_shopify_changed_lines_after_reservation_go_to_a_person(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = await shopify_channel(oms, {"TEE": sku})
    body = shopify_order("TEE", updated_at=at(0))
    ref = (await deliver(oms, channel, "orders/create", body)).json()["order_ref"]
    await settle(oms, ref, "routed")
    more = body | {
        "updated_at": at(3),
        "line_items": [body["line_items"][0] | {"quantity": 3}],
    }
    r = await deliver(oms, channel, "orders/updated", more)
    assert r.json() == {"status": "updated", "order_ref": ref}
    order = await settle(oms, ref, "exception")
    assert order["exception_reason"].startswith("order_changed")
    # The order still has the lines its stock is held for: no silent mismatch.
    assert [ln["qty"] for ln in order["lines"]] == [1]
    await stock_is(oms, sku, 5, 1)
    await assert_consistent(oms)


# -- WooCommerce -----------------------------------------------------------------------------


def woo_order(sku: str, *, status: str, modified: int, **extra: Any) -> dict[str, Any]:
    """A WooCommerce REST order resource, as its webhooks deliver it."""
    order_id = int(uuid.uuid4().int % 10**8)
    paid = status in ("processing", "completed")
    return {
        "id": order_id,
        "number": str(order_id),
        "status": status,
        "currency": "CNY",
        "date_created_gmt": "2026-11-11T00:00:00",
        "date_modified_gmt": (T0 + timedelta(minutes=modified)).strftime("%Y-%m-%dT%H:%M:%S"),
        "date_paid_gmt": "2026-11-11T00:01:00" if paid else None,
        "customer_id": order_id + 7,
        "customer_note": "",
        "billing": {
            "first_name": "Han",
            "last_name": "Mei",
            "email": "han.mei@example.com",
            "phone": "+8613800000009",
            "country": "CN",
            "state": "SH",
        },
        "shipping": {
            "first_name": "Han",
            "last_name": "Mei",
            "address_1": "2 Demo Road",
            "city": "Shanghai",
            "state": "SH",
            "postcode": "200000",
            "country": "CN",
        },
        "line_items": [
            {"id": 1, "name": "Tee", "product_id": 93, "quantity": 1, "sku": sku, "price": 12.5}
        ],
        "shipping_lines": [],
        "meta_data": [],
        **extra,
    }


async def woo_deliver(oms: Oms, channel: str, topic: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    digest = hmac.new(WOO_SECRET.encode(), raw, hashlib.sha256).digest()
    return await oms.http.post(
        f"{oms.gateway}/webhooks/woocommerce/{channel}",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
            "X-WC-Webhook-Source": "https://shop.example.com/",
        },
    )


async def test_woocommerce_paid_later_then_cancelled(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    channel = f"woo-{uuid.uuid4().hex[:6]}"
    r = await oms.http.post(
        f"{oms.gateway}/channels",
        json={"name": channel, "type": "woocommerce", "secret": WOO_SECRET},
    )
    assert r.status_code == 201, r.text
    pending = woo_order(sku, status="pending", modified=0)
    r = await woo_deliver(oms, channel, "order.created", pending)
    ref = r.json()["order_ref"]
    await settle(oms, ref, "pending_payment")

    processing = woo_order(sku, status="processing", modified=4) | {"id": pending["id"]}
    r = await woo_deliver(oms, channel, "order.updated", processing)
    assert r.json() == {"status": "updated", "order_ref": ref}
    await settle(oms, ref, "routed")
    await stock_is(oms, sku, 5, 1)

    cancelled = processing | {"status": "cancelled", "date_modified_gmt": "2026-11-11T00:09:00"}
    r = await woo_deliver(oms, channel, "order.updated", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}
    await settle(oms, ref, "cancelled")
    await stock_is(oms, sku, 5, 0)
    rows = await ledger(oms, sku)
    assert reserved_lines(rows) == 1 and released_lines(rows) == 1
    await assert_consistent(oms)


# -- the generic webhook ---------------------------------------------------------------------


async def test_generic_webhook_paid_later_then_cancelled(oms: Oms) -> None:
    sku = await oms.new_sku({"WH-SH": 5})
    unpaid = order_body(sku, paid=False, paid_at=None, updated_at=at(0))
    r = await oms.post_order("web", unpaid)
    assert r.status_code == 202, r.text
    ref = r.json()["order_ref"]
    await settle(oms, ref, "pending_payment")

    paid = unpaid | {"paid": True, "paid_at": at(1), "updated_at": at(1)}
    r = await oms.post_order("web", paid)
    assert r.json() == {"status": "updated", "order_ref": ref}
    await settle(oms, ref, "routed")
    await stock_is(oms, sku, 5, 1)

    # An older version (unpaid) arriving late changes nothing.
    r = await oms.post_order("web", unpaid)
    assert r.json() == {"status": "duplicate", "order_ref": ref}

    cancelled = paid | {"cancelled": True, "cancel_reason": "buyer asked", "updated_at": at(2)}
    r = await oms.post_order("web", cancelled)
    assert r.json() == {"status": "updated", "order_ref": ref}
    order = await settle(oms, ref, "cancelled")
    assert order["cancel_reason"] == "buyer asked"
    await stock_is(oms, sku, 5, 0)
    rows = await ledger(oms, sku)
    assert reserved_lines(rows) == 1 and released_lines(rows) == 1
    await assert_consistent(oms)
