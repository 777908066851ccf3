"""Each platform's order mapped to the canonical order, compared whole (every field), as
plain objects: Shopify and WooCommerce from their sample bodies, a Taobao-style trade
built here (paid, cancelled, sparse)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channel_gateway.domain.platforms import (
    PlatformOrder,
    from_shopify,
    from_top_trade,
    from_woocommerce,
)

FIXTURES = Path(__file__).parent / "fixtures"


def whole(mapped: PlatformOrder) -> dict[str, Any]:
    return {
        "order": mapped.order.model_dump(mode="json"),
        "cancelled": mapped.cancelled,
        "cancel_reason": mapped.cancel_reason,
        "shipping_methods": mapped.shipping_methods,
        "tags": mapped.tags,
    }


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def canonical(**fields: Any) -> dict[str, Any]:
    """The canonical order's defaults, with ``fields`` over them."""
    return {
        "delivery_requirements": [],
        "notes": None,
        "priority": "normal",
        "payment_terms": "prepaid",
        "cancelled": False,
        "cancel_reason": None,
        "updated_at": None,
        **fields,
    }


def test_a_shopify_order_whole() -> None:
    mapped = from_shopify(sample("shopify_order.json") | {"financial_status": "paid"}, "x")
    assert whole(mapped) == {
        "order": canonical(
            channel_order_id="820982911946154508",
            customer={
                "platform_user_id": "115310627314723954",
                "name": "John Smith",
                "phone": None,
                "email": "john@example.com",
            },
            lines=[
                {"sku": "IPOD2008PINK", "qty": 1, "unit_price": "199.00"},
                {"sku": "IPOD2008BLACK", "qty": 1, "unit_price": "199.00"},
            ],
            currency="USD",
            paid=True,
            paid_at="2021-12-31T19:00:00-05:00",
            shipping_address={
                "name": "Steve Shipper",
                "phone": None,
                "region": "US-KY",
                "city": "Shippington",
                "line1": "123 Shipping Street",
                "postal_code": "40003",
            },
            delivery_requirements=["signature"],
            notes="Please ring the bell twice",
            updated_at="2022-01-01T00:00:00Z",
        ),
        "cancelled": False,
        "cancel_reason": None,
        "shipping_methods": ["Generic Shipping"],
        "tags": ["tag1", "tag2"],
    }


def test_a_woocommerce_order_whole() -> None:
    assert whole(from_woocommerce(sample("woocommerce_order.json"))) == {
        "order": canonical(
            channel_order_id="727",
            customer={
                "platform_user_id": "john.doe@example.com",
                "name": "John Doe",
                "phone": "(555) 555-5555",
                "email": "john.doe@example.com",
            },
            lines=[
                {"sku": "WOO-SINGLE-1", "qty": 2, "unit_price": "3.00"},
                {"sku": "SHIP-IDEA-BLACK-M", "qty": 1, "unit_price": "12.10"},
            ],
            currency="USD",
            paid=True,
            paid_at="2017-03-22T19:28:08Z",
            shipping_address={
                "name": "John Doe",
                "phone": "(555) 555-5555",
                "region": "US-CA",
                "city": "San Francisco",
                "line1": "969 Market",
                "postal_code": "94103",
            },
            delivery_requirements=["fragile"],
            notes="Leave with the neighbour if out",
            updated_at="2017-03-22T19:28:08Z",
        ),
        "cancelled": False,
        "cancel_reason": None,
        "shipping_methods": ["Express Shipping", "flat_rate"],
        "tags": [],
    }


TRADE: dict[str, Any] = {
    "tid": 4001,
    "status": "WAIT_SELLER_SEND_GOODS",
    "pay_time": "2026-11-11 00:00:05",
    "modified": "2026-11-11T08:00:10+08:00",
    "buyer_open_uid": "AAE-1",
    "buyer_nick": "nick",
    "receiver_name": "  Han Meimei ",
    "receiver_mobile": "13900000002",
    "receiver_state": "Zhejiang",
    "receiver_city": "Hangzhou",
    "receiver_address": "2 West Lake Road",
    "receiver_zip": "310000",
    "buyer_message": "after 6pm",
    "shipping_type": "express, ems",
    "orders": [
        {"outer_sku_id": "TM-1", "sku_id": "s1", "num_iid": 1, "num": 2, "price": "9.9"},
        {"sku_id": "s2", "num_iid": 2, "num": 1, "price": 5},
        {"num_iid": 3, "num": 1, "price": "0"},
    ],
}


def test_a_paid_marketplace_trade_whole() -> None:
    assert whole(from_top_trade(TRADE)) == {
        "order": canonical(
            channel_order_id="4001",
            customer={
                "platform_user_id": "AAE-1",
                "name": "Han Meimei",
                "phone": "13900000002",
                "email": None,
            },
            lines=[
                {"sku": "TM-1", "qty": 2, "unit_price": "9.90"},
                {"sku": "s2", "qty": 1, "unit_price": "5.00"},
                {"sku": "3", "qty": 1, "unit_price": "0.00"},
            ],
            currency="CNY",
            paid=True,
            paid_at="2026-11-11T00:00:05Z",
            shipping_address={
                "name": "Han Meimei",
                "phone": "13900000002",
                "region": "Zhejiang",
                "city": "Hangzhou",
                "line1": "2 West Lake Road",
                "postal_code": "310000",
            },
            notes="after 6pm",
            updated_at="2026-11-11T00:00:10Z",
        ),
        "cancelled": False,
        "cancel_reason": None,
        "shipping_methods": ["express", "ems"],
        "tags": [],
    }


def test_a_closed_trade_is_cancelled_and_a_sparse_one_keeps_its_defaults() -> None:
    closed = from_top_trade(TRADE | {"status": "TRADE_CLOSED_BY_TAOBAO", "currency": "HKD"})
    assert (closed.cancelled, closed.cancel_reason) == (
        True,
        "marketplace status TRADE_CLOSED_BY_TAOBAO",
    )
    assert (closed.order.paid, closed.order.paid_at, closed.order.currency) == (False, None, "HKD")
    before = datetime.now(UTC)
    sparse = from_top_trade(
        {
            "tid": 5,
            "status": "TRADE_FINISHED",
            "buyer_nick": "nick",
            "receiver_mobile": "call me",
            "orders": [{"num_iid": 9, "num": 1, "price": "1"}],
        }
    )
    order = sparse.order
    assert order.customer.platform_user_id == "nick"
    assert (order.customer.name, order.customer.phone) == (None, None)
    assert order.shipping_address.region == "unknown"
    assert (order.shipping_address.city, order.shipping_address.line1) == (None, None)
    assert order.paid and order.paid_at is not None and order.paid_at >= before
    assert (order.notes, order.updated_at, sparse.shipping_methods) == (None, None, [])
    waiting = from_top_trade(TRADE | {"status": "WAIT_BUYER_PAY"})
    assert (waiting.order.paid, waiting.cancelled) == (False, False)
