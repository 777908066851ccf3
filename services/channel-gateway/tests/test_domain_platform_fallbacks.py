"""The platform mappers' rules beyond the sample bodies, as plain objects: what each falls
back on when a field is missing, which statuses pay or cancel an order, overlong text cut
to the canonical limits (the order is kept), what is refused, and what the SKU map and the
channel's rules do to the published order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.config import OrderClassRule
from channel_gateway.domain.platforms import (
    PlatformOrder,
    apply_channel,
    from_shopify,
    from_top_trade,
    from_woocommerce,
)

SAMPLES = Path(__file__).parent / "fixtures"
SHOPIFY: dict[str, Any] = json.loads((SAMPLES / "shopify_order.json").read_text())
WOO: dict[str, Any] = json.loads((SAMPLES / "woocommerce_order.json").read_text())
TRADE: dict[str, Any] = {
    "tid": 7,
    "status": "WAIT_BUYER_PAY",
    "buyer_nick": "nick",
    "orders": [{"outer_sku_id": "TM-1", "num": 1, "price": "1"}],
}
LONG = "x" * 3000


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


# -- Shopify ------------------------------------------------------------------------------


def test_shopify_ships_to_the_shipping_address_else_to_the_billing_address() -> None:
    billing = SHOPIFY["billing_address"] | {"city": "Billington", "phone": "+1 502 555 0101"}
    shipping = SHOPIFY["shipping_address"] | {"phone": "+1 502 555 0100", "address2": "Suite 5"}
    both = from_shopify(SHOPIFY | {"shipping_address": shipping, "billing_address": billing}, "x")
    address = both.order.shipping_address
    assert (address.city, address.phone) == ("Shippington", "+1 502 555 0100")
    assert address.line1 == "123 Shipping Street Suite 5"
    billing_only = SHOPIFY | {"shipping_address": None, "billing_address": billing}
    address = from_shopify(billing_only, "x").order.shipping_address
    assert (address.city, address.phone) == ("Billington", "+1 502 555 0101")
    neither = from_shopify(SHOPIFY | {"shipping_address": None, "billing_address": None}, "x")
    assert neither.order.shipping_address.model_dump() == {
        "name": None,
        "phone": None,
        "region": "unknown",
        "city": None,
        "line1": None,
        "postal_code": None,
    }


@pytest.mark.parametrize(
    ("country", "province", "region"),
    [
        (" us", "ky ", "US-KY"),
        ("US", None, "US"),
        (None, "KY", "KY"),
        ("", "", "unknown"),
    ],
)
def test_the_region_is_country_and_province_whichever_are_known(
    country: str | None, province: str | None, region: str
) -> None:
    address = SHOPIFY["shipping_address"] | {"country_code": country, "province_code": province}
    mapped = from_shopify(SHOPIFY | {"shipping_address": address}, "x")
    assert mapped.order.shipping_address.region == region


def test_shopify_customer_falls_back_on_the_orders_contact_then_on_a_guest_id() -> None:
    customer = SHOPIFY["customer"] | {"phone": "+1 502 555 0102"}
    registered = from_shopify(SHOPIFY | {"customer": customer, "phone": "+1 502 555 0199"}, "x")
    assert registered.order.customer.phone == "+1 502 555 0102"
    guest = from_shopify(SHOPIFY | {"customer": None, "phone": "+1 502 555 0199"}, "x")
    assert guest.order.customer.model_dump() == {
        "platform_user_id": "jon@example.com",
        "name": None,
        "phone": "+1 502 555 0199",
        "email": "jon@example.com",
    }
    anonymous = from_shopify(SHOPIFY | {"customer": None, "email": None}, "x")
    assert anonymous.order.customer.platform_user_id == "guest-820982911946154508"


def test_a_malformed_email_is_dropped_not_the_order() -> None:
    customer = SHOPIFY["customer"] | {"email": "john at example"}
    assert from_shopify(SHOPIFY | {"customer": customer}, "x").order.customer.email is None


def test_a_line_without_a_sku_is_known_by_its_variant_or_product_or_item_id() -> None:
    items = [
        {"sku": "", "variant_id": 808, "id": 1, "quantity": 1, "price": "1"},
        {"sku": None, "variant_id": None, "id": 2, "quantity": 1, "price": "1"},
    ]
    shopify = from_shopify(SHOPIFY | {"line_items": items}, "x")
    assert [ln.sku for ln in shopify.order.lines] == ["808", "2"]
    woo_items = [{"sku": "", "product_id": 93, "quantity": 1, "price": 3}]
    woo = from_woocommerce(WOO | {"line_items": woo_items})
    assert [ln.sku for ln in woo.order.lines] == ["93"]


@pytest.mark.parametrize(
    ("financial_status", "paid"),
    [
        ("paid", True),
        ("partially_refunded", True),
        ("refunded", True),
        ("pending", False),
        ("authorized", False),
        ("voided", False),
    ],
)
def test_shopify_financial_status_decides_paid(financial_status: str, paid: bool) -> None:
    order = from_shopify(SHOPIFY | {"financial_status": financial_status}, "x").order
    assert (order.paid, order.paid_at is not None) == (paid, paid)


def test_shopify_paid_at_is_the_processing_time_else_the_last_update_else_now() -> None:
    paid = SHOPIFY | {
        "financial_status": "paid",
        "processed_at": "2022-01-01T08:00:00Z",
        "updated_at": "2022-01-02T00:00:00Z",
    }
    assert from_shopify(paid, "x").order.paid_at == datetime(2022, 1, 1, 8, tzinfo=UTC)
    unprocessed = paid | {"processed_at": None}
    assert from_shopify(unprocessed, "x").order.paid_at == datetime(2022, 1, 2, tzinfo=UTC)
    before = datetime.now(UTC)
    untimed = from_shopify(paid | {"processed_at": None, "updated_at": None}, "x").order
    assert untimed.paid_at is not None and untimed.paid_at >= before


def test_a_lowercase_z_is_utc_as_rfc_3339_allows() -> None:
    paid = SHOPIFY | {"financial_status": "paid", "processed_at": "2022-01-01T08:00:00z"}
    assert from_shopify(paid, "x").order.paid_at == datetime(2022, 1, 1, 8, tzinfo=UTC)


def test_shopify_requirements_come_from_every_delivery_note_attribute() -> None:
    attributes = [
        {"name": "Delivery", "value": "cold_chain, signature"},
        {"name": "delivery_requirements", "value": ["fragile", " "]},
        {"name": "gift_wrap", "value": "yes"},
        {"value": "no name"},
    ]
    order = from_shopify(SHOPIFY | {"note_attributes": attributes}, "x").order
    assert order.delivery_requirements == ["cold_chain", "signature", "fragile"]


def test_shopify_shipping_methods_are_every_lines_title_and_code() -> None:
    lines = [{"title": "Express", "code": "EXP"}, {"title": None, "code": "std"}]
    assert from_shopify(SHOPIFY | {"shipping_lines": lines}, "x").shipping_methods == [
        "Express",
        "EXP",
        "std",
    ]


def test_a_cancel_reason_without_a_cancellation_says_nothing() -> None:
    mapped = from_shopify(SHOPIFY | {"cancel_reason": "customer", "cancelled_at": None}, "x")
    assert (mapped.cancelled, mapped.cancel_reason) == (False, None)


# -- WooCommerce --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "dated", "paid", "cancelled"),
    [
        ("processing", False, True, False),
        ("completed", False, True, False),
        ("on-hold", True, True, False),  # paid by its date of payment
        ("pending", False, False, False),
        ("cancelled", True, False, True),
        ("refunded", True, False, True),
        ("failed", False, False, True),
    ],
)
def test_woocommerce_status_and_payment_date_decide_paid_and_cancelled(
    status: str, dated: bool, paid: bool, cancelled: bool
) -> None:
    data = WOO | {"status": status}
    if not dated:
        data |= {"date_paid": None, "date_paid_gmt": None}
    mapped = from_woocommerce(data)
    assert (mapped.order.paid, mapped.order.paid_at is not None) == (paid, paid)
    assert (mapped.cancelled, mapped.cancel_reason) == (
        cancelled,
        f"woocommerce status {status}" if cancelled else None,
    )


def test_woocommerce_local_times_stand_in_for_missing_gmt_ones() -> None:
    local = WOO | {"status": "on-hold", "date_paid_gmt": None, "date_modified_gmt": None}
    order = from_woocommerce(local).order
    assert order.paid_at == datetime(2017, 3, 22, 16, 28, 8, tzinfo=UTC)
    assert order.updated_at == datetime(2017, 3, 22, 16, 28, 8, tzinfo=UTC)
    before = datetime.now(UTC)
    undated = from_woocommerce(local | {"status": "processing", "date_paid": None}).order
    assert undated.paid_at is not None and undated.paid_at >= before


def test_woocommerce_customer_and_address_details() -> None:
    shipping = WOO["shipping"] | {"phone": "+1 415 555 0100", "address_2": "Apt 4"}
    meta = [
        {"key": "_delivery_requirements", "value": "cold_chain"},
        {"key": "Delivery_Requirements", "value": "fragile"},
    ]
    data = WOO | {"customer_id": 42, "shipping": shipping, "meta_data": meta}
    order = from_woocommerce(data).order
    assert order.customer.platform_user_id == "42"  # a registered customer
    assert order.shipping_address.phone == "+1 415 555 0100"  # not the billing phone
    assert order.shipping_address.line1 == "969 Market Apt 4"
    assert order.delivery_requirements == ["cold_chain", "fragile"]


# -- every platform -----------------------------------------------------------------------


def test_an_order_without_its_platform_id_or_buyer_is_refused() -> None:
    with pytest.raises(ValidationError, match="channel_order_id"):
        from_shopify(without(SHOPIFY, "id"), "x")
    with pytest.raises(ValidationError, match="channel_order_id"):
        from_woocommerce(without(WOO, "id"))
    with pytest.raises(ValidationError, match="channel_order_id"):
        from_top_trade(without(TRADE, "tid"))
    with pytest.raises(ValidationError, match="platform_user_id"):
        from_top_trade(without(TRADE, "buyer_nick"))


def test_a_price_that_is_no_number_is_refused_as_a_validation_error() -> None:
    items = [{"sku": "A", "quantity": 1, "price": "twelve"}]
    with pytest.raises(ValidationError, match="unit_price"):
        from_shopify(SHOPIFY | {"line_items": items}, "x")


def test_overlong_platform_text_is_cut_to_the_canonical_limits() -> None:
    address = SHOPIFY["shipping_address"] | {
        "name": LONG,
        "city": LONG,
        "address1": LONG,
        "zip": LONG,
        "country_code": "C" * 40,
        "province_code": "P" * 40,
    }
    customer = SHOPIFY["customer"] | {"first_name": LONG, "last_name": LONG}
    shopify = from_shopify(
        SHOPIFY
        | {
            "shipping_address": address,
            "customer": customer,
            "note": LONG,
            "cancelled_at": "2022-01-01T00:00:00Z",
            "cancel_reason": LONG,
        },
        "x",
    )
    order = shopify.order
    assert len(order.customer.name or "") == 200
    assert order.shipping_address.model_dump() == {
        "name": "x" * 200,
        "phone": None,
        "region": ("C" * 40 + "-" + "P" * 40)[:64],
        "city": "x" * 100,
        "line1": "x" * 300,
        "postal_code": "x" * 20,
    }
    assert (order.notes, shopify.cancel_reason) == ("x" * 2000, "x" * 200)
    country_only = SHOPIFY["shipping_address"] | {"country_code": LONG, "province_code": None}
    region = from_shopify(SHOPIFY | {"shipping_address": country_only}, "x").order
    assert region.shipping_address.region == "X" * 64

    shipping = WOO["shipping"] | {"city": LONG, "address_1": LONG, "postcode": LONG}
    woo = from_woocommerce(WOO | {"shipping": shipping, "customer_note": LONG}).order
    assert (woo.shipping_address.city, woo.shipping_address.line1) == ("x" * 100, "x" * 300)
    assert (woo.shipping_address.postal_code, woo.notes) == ("x" * 20, "x" * 2000)

    receiver = {f"receiver_{k}": LONG for k in ("name", "state", "city", "address", "zip")} | {
        "buyer_message": LONG
    }
    trade = from_top_trade(TRADE | receiver).order
    assert (trade.customer.name, trade.notes) == ("x" * 200, "x" * 2000)
    assert trade.shipping_address.model_dump() == {
        "name": "x" * 200,
        "phone": None,
        "region": "x" * 64,
        "city": "x" * 100,
        "line1": "x" * 300,
        "postal_code": "x" * 20,
    }


@pytest.fixture
def east_of_utc() -> Iterator[None]:
    """The host's local time zone is UTC+8 (POSIX spelling, no tz database needed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "XST-8")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("east_of_utc")
def test_the_channels_version_time_is_told_in_utc_whatever_the_hosts_zone() -> None:
    updated = from_shopify(SHOPIFY | {"updated_at": "2022-01-01T09:00:00+09:00"}, "x")
    version = updated.order.updated_at
    assert version == datetime(2022, 1, 1, tzinfo=UTC)
    assert version is not None and version.utcoffset() == timedelta(0)


# -- the channel's SKU map and rules --------------------------------------------------------


def test_unknown_skus_are_flagged_ahead_of_the_buyers_notes_within_their_limit() -> None:
    unknown = {"OTHER": "SKU-X"}
    flagged = apply_channel(from_woocommerce(WOO), unknown, [])
    assert flagged.unmapped_skus == ["WOO-SINGLE-1", "SHIP-IDEA-BLACK-M"]
    assert flagged.order.notes == (
        "[unknown_sku_mapping: WOO-SINGLE-1, SHIP-IDEA-BLACK-M] Leave with the neighbour if out"
    )
    silent = apply_channel(from_woocommerce(WOO | {"customer_note": ""}), unknown, [])
    assert silent.order.notes == "[unknown_sku_mapping: WOO-SINGLE-1, SHIP-IDEA-BLACK-M]"
    talkative = from_woocommerce(WOO | {"customer_note": "n" * 2000})
    notes = apply_channel(talkative, unknown, []).order.notes or ""
    assert len(notes) == 2000 and notes.startswith("[unknown_sku_mapping: WOO-SINGLE-1, ")


def test_rules_see_requirements_and_tags_and_a_cancellation_passes_through() -> None:
    cancelled = SHOPIFY | {
        "cancelled_at": "2022-01-01T00:00:00Z",
        "cancel_reason": "fraud",
        "tags": "vip, b2b",
    }
    mapped = from_shopify(cancelled, "x")  # its delivery requirement: "signature"
    by_requirement = [OrderClassRule(attribute="delivery_requirement", contains="SIGN")]
    assert apply_channel(mapped, {}, by_requirement).order.priority == "urgent"
    by_tag = apply_channel(mapped, {}, [OrderClassRule(attribute="tag", contains="VIP")])
    assert (by_tag.order.priority, by_tag.cancelled, by_tag.cancel_reason) == (
        "urgent",
        True,
        "fraud",
    )


def test_a_generic_channels_order_says_itself_whether_it_is_cancelled() -> None:
    order = from_top_trade(TRADE).order.model_copy(
        update={"cancelled": True, "cancel_reason": "buyer asked"}
    )
    assert isinstance(order, CanonicalOrder)
    platform = PlatformOrder.of_canonical(order)
    assert (platform.order, platform.cancelled, platform.cancel_reason) == (
        order,
        True,
        "buyer asked",
    )
    assert (platform.shipping_methods, platform.tags) == ([], [])
