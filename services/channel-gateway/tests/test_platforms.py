"""Shopify and WooCommerce order JSON mapped to the canonical order, with plain values."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from channel_gateway.domain.config import OrderClassRule
from channel_gateway.domain.platforms import apply_channel, from_shopify, from_woocommerce
from channel_gateway.pull import top_sign


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / name).read_text())
    return data


def test_a_shopify_order_keeps_amounts_customer_notes_and_requirements() -> None:
    data = fixture("shopify_order.json") | {"financial_status": "paid"}
    mapped = from_shopify(data, "orders/create")
    order = mapped.order
    assert order.channel_order_id == "820982911946154508"
    assert order.currency == "USD"
    assert [(ln.sku, ln.qty, ln.unit_price) for ln in order.lines] == [
        ("IPOD2008PINK", 1, Decimal("199.00")),
        ("IPOD2008BLACK", 1, Decimal("199.00")),
    ]
    assert order.customer.platform_user_id == "115310627314723954"
    assert order.customer.email == "john@example.com"
    assert order.customer.name == "John Smith"
    assert order.shipping_address.region == "US-KY"
    assert order.shipping_address.phone is None  # "555-555-SHIP" is not a phone number
    assert order.notes == "Please ring the bell twice"
    assert order.delivery_requirements == ["signature"]
    assert order.paid and order.paid_at is not None
    assert not mapped.cancelled
    assert mapped.tags == ["tag1", "tag2"]


def test_a_cancelled_shopify_order_says_so_with_its_reason() -> None:
    data = fixture("shopify_order.json") | {
        "cancelled_at": "2022-01-01T10:00:00-05:00",
        "cancel_reason": "customer",
    }
    mapped = from_shopify(data, "orders/cancelled")
    assert mapped.cancelled and mapped.cancel_reason == "customer"
    assert not mapped.order.paid


def test_the_unsigned_shopify_topic_neither_pays_nor_cancels_an_order() -> None:
    pending = fixture("shopify_order.json") | {"financial_status": "pending"}
    assert not from_shopify(pending, "orders/paid").order.paid
    assert not from_shopify(pending, "orders/cancelled").cancelled


def test_platform_orders_carry_the_channels_own_time_of_the_version() -> None:
    shopify = from_shopify(fixture("shopify_order.json"), "orders/updated")
    assert shopify.order.updated_at is not None
    assert shopify.order.updated_at.isoformat() == "2022-01-01T00:00:00+00:00"
    woo = from_woocommerce(fixture("woocommerce_order.json"))
    assert woo.order.updated_at is not None
    assert woo.order.updated_at.isoformat() == "2017-03-22T19:28:08+00:00"


def test_a_woocommerce_order_parses_number_prices_as_decimals() -> None:
    raw = json.dumps(fixture("woocommerce_order.json"))
    data = json.loads(raw, parse_float=Decimal)
    mapped = from_woocommerce(data)
    order = mapped.order
    assert [(ln.sku, ln.qty, ln.unit_price) for ln in order.lines] == [
        ("WOO-SINGLE-1", 2, Decimal("3.00")),
        ("SHIP-IDEA-BLACK-M", 1, Decimal("12.10")),
    ]
    assert order.paid and order.paid_at is not None and order.paid_at.tzinfo is not None
    assert order.customer.platform_user_id == "john.doe@example.com"  # a guest checkout
    assert order.customer.phone == "(555) 555-5555"
    assert order.shipping_address.region == "US-CA"
    assert order.notes == "Leave with the neighbour if out"
    assert order.delivery_requirements == ["fragile"]
    assert mapped.shipping_methods == ["Express Shipping", "flat_rate"]


def test_sku_map_rules_and_unknown_skus() -> None:
    mapped = from_woocommerce(fixture("woocommerce_order.json"))
    rules = [OrderClassRule(attribute="shipping_method", contains="express", priority="urgent")]
    result = apply_channel(mapped, {"WOO-SINGLE-1": "SKU-A"}, rules)
    assert [ln.sku for ln in result.order.lines] == ["SKU-A", "SHIP-IDEA-BLACK-M"]
    assert result.unmapped_skus == ["SHIP-IDEA-BLACK-M"]
    assert result.order.notes is not None
    assert result.order.notes.startswith("[unknown_sku_mapping: SHIP-IDEA-BLACK-M]")
    assert result.order.priority == "urgent"

    passthrough = apply_channel(mapped, {}, [])
    assert passthrough.unmapped_skus == [] and passthrough.order.priority == "normal"


def test_top_signature_is_md5_of_secret_sorted_params_secret_upper_hex() -> None:
    import hashlib

    params = {"method": "m", "app_key": "k", "v": "2.0"}
    expected = hashlib.md5(b"s" + b"app_keykmethodmv2.0" + b"s").hexdigest().upper()
    assert top_sign(params, "s") == expected
    assert top_sign(params | {"sign": "x"}, "s") == expected
