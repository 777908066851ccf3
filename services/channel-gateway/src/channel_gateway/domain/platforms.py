"""Shopify, WooCommerce and TOP-style (pull) order JSON mapped onto the canonical order.

Each mapper returns a :class:`PlatformOrder`: the canonical order with the channel's own
SKUs (the SKU map is applied afterwards, see :func:`apply_channel`), whether the platform
says it is cancelled, and the attributes order-class rules look at. Amounts are parsed as
decimals (never floats); malformed input raises ``pydantic.ValidationError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from channel_gateway.domain.canonical import CanonicalOrder
from channel_gateway.domain.config import OrderClassRule, classify

UNKNOWN_SKU_MAPPING = "unknown_sku_mapping"
_PHONE = re.compile(r"^\+?[0-9 ()\-]{3,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class PlatformOrder:
    """What a platform's signed body says of an order. Facts (paid, cancelled, times)
    come from the body only: a webhook topic header is not signed, so it routes a
    delivery but never makes an order paid or cancelled."""

    order: CanonicalOrder
    cancelled: bool = False
    cancel_reason: str | None = None
    shipping_methods: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @classmethod
    def of_canonical(cls, order: CanonicalOrder) -> PlatformOrder:
        """A canonical order as sent by a generic channel (webhook, import)."""
        return cls(order, cancelled=order.cancelled, cancel_reason=order.cancel_reason)


@dataclass
class ChannelOrder:
    """The order as published, and the lines whose SKU the channel's map does not know."""

    order: CanonicalOrder
    cancelled: bool
    cancel_reason: str | None
    unmapped_skus: list[str]


def apply_channel(
    platform: PlatformOrder, sku_map: Mapping[str, str], rules: list[OrderClassRule]
) -> ChannelOrder:
    """Translate SKUs through the channel's map and classify the order by its rules.

    A channel without a map passes SKUs through. With a map, a SKU it lacks keeps its
    original value (so the order reaches the exception queue as an unknown SKU instead
    of being dropped) and the order's notes say ``[unknown_sku_mapping: ...]``.
    """
    order = platform.order
    unmapped: list[str] = []
    lines = []
    for line in order.lines:
        mapped = sku_map.get(line.sku)
        if mapped is None and sku_map:
            unmapped.append(line.sku)
        lines.append(line.model_copy(update={"sku": mapped or line.sku}))
    notes = order.notes
    if unmapped:
        flag = f"[{UNKNOWN_SKU_MAPPING}: {', '.join(unmapped)}]"
        notes = f"{flag} {notes}" if notes else flag
        notes = notes[:2000]
    priority = classify(
        rules,
        shipping_methods=platform.shipping_methods,
        delivery_requirements=order.delivery_requirements,
        tags=platform.tags,
        current=order.priority,
    )
    published = order.model_copy(update={"lines": lines, "notes": notes, "priority": priority})
    return ChannelOrder(published, platform.cancelled, platform.cancel_reason, unmapped)


# -- helpers ------------------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal("-1")  # refused by the canonical model (ge=0), naming the field


def _phone(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text if _PHONE.match(text) else None


def _email(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text if _EMAIL.match(text) else None


def _text(value: Any, limit: int) -> str | None:
    text = str(value).strip() if value not in (None, "") else ""
    return text[:limit] or None


def _region(country: Any, province: Any) -> str:
    country = str(country or "").strip().upper()
    province = str(province or "").strip().upper()
    if country and province:
        return f"{country}-{province}"[:64]
    return (country or province or "unknown")[:64]


def _name(first: Any, last: Any) -> str | None:
    return _text(" ".join(str(p) for p in (first, last) if p), 200)


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _when(value: Any) -> datetime | None:
    """An RFC 3339 time (``Z`` or ``z`` for UTC, as RFC 3339 allows); None if unreadable."""
    if not value:
        return None
    text = str(value)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version(value: Any) -> datetime | None:
    """The channel's time of an order version, in UTC (versions are compared)."""
    moment = _when(value)
    return moment.astimezone(UTC) if moment else None


# -- Shopify ------------------------------------------------------------------------------

SHOPIFY_TOPICS = ("orders/create", "orders/paid", "orders/cancelled", "orders/updated")


def from_shopify(data: dict[str, Any], topic: str) -> PlatformOrder:
    """The order as Shopify's signed body states it; ``topic`` (the unsigned
    ``X-Shopify-Topic``) decides nothing here."""
    customer = data.get("customer") or {}
    address = data.get("shipping_address") or data.get("billing_address") or {}
    order_id = str(data.get("id", ""))
    paid = data.get("financial_status") in ("paid", "partially_refunded", "refunded")
    paid_at = _when(data.get("processed_at")) or _when(data.get("updated_at"))
    requirements: list[str] = []
    for attribute in data.get("note_attributes") or []:
        if str(attribute.get("name", "")).lower() in ("delivery_requirements", "delivery"):
            requirements += _split(attribute.get("value"))
    canonical = {
        "channel_order_id": order_id,
        "customer": {
            "platform_user_id": str(customer.get("id") or data.get("email") or f"guest-{order_id}"),
            "name": _name(customer.get("first_name"), customer.get("last_name")),
            "phone": _phone(customer.get("phone") or data.get("phone")),
            "email": _email(customer.get("email") or data.get("email")),
        },
        "lines": [
            {
                "sku": str(item.get("sku") or item.get("variant_id") or item.get("id")),
                "qty": item.get("quantity"),
                "unit_price": _money(item.get("price")),
            }
            for item in data.get("line_items") or []
        ],
        "currency": data.get("currency"),
        "paid": paid,
        "paid_at": (paid_at or datetime.now(UTC)) if paid else None,
        "shipping_address": {
            "name": _text(address.get("name"), 200),
            "phone": _phone(address.get("phone")),
            "region": _region(address.get("country_code"), address.get("province_code")),
            "city": _text(address.get("city"), 100),
            "line1": _text(
                " ".join(p for p in (address.get("address1"), address.get("address2")) if p),
                300,
            ),
            "postal_code": _text(address.get("zip"), 20),
        },
        "delivery_requirements": requirements,
        "notes": _text(data.get("note"), 2000),
        "updated_at": _version(data.get("updated_at")),
    }
    cancelled = bool(data.get("cancelled_at"))
    return PlatformOrder(
        CanonicalOrder.model_validate(canonical),
        cancelled=cancelled,
        cancel_reason=_text(data.get("cancel_reason"), 200) if cancelled else None,
        shipping_methods=[
            str(s.get(k))
            for s in data.get("shipping_lines") or []
            for k in ("title", "code")
            if s.get(k)
        ],
        tags=_split(data.get("tags")),
    )


# -- WooCommerce --------------------------------------------------------------------------

WOOCOMMERCE_TOPICS = ("order.created", "order.updated")
_WC_PAID = ("processing", "completed")
_WC_CANCELLED = ("cancelled", "refunded", "failed")


def from_woocommerce(data: dict[str, Any]) -> PlatformOrder:
    billing = data.get("billing") or {}
    shipping = data.get("shipping") or {}
    order_id = str(data.get("id", ""))
    status = str(data.get("status", ""))
    paid_at = _when(data.get("date_paid_gmt")) or _when(data.get("date_paid"))
    paid = status in _WC_PAID or (paid_at is not None and status not in _WC_CANCELLED)
    requirements: list[str] = []
    for meta in data.get("meta_data") or []:
        if str(meta.get("key", "")).lower() in ("delivery_requirements", "_delivery_requirements"):
            requirements += _split(meta.get("value"))
    customer_id = data.get("customer_id")
    canonical = {
        "channel_order_id": order_id,
        "customer": {
            "platform_user_id": str(customer_id or billing.get("email") or f"guest-{order_id}"),
            "name": _name(billing.get("first_name"), billing.get("last_name")),
            "phone": _phone(billing.get("phone")),
            "email": _email(billing.get("email")),
        },
        "lines": [
            {
                "sku": str(item.get("sku") or item.get("product_id")),
                "qty": item.get("quantity"),
                "unit_price": _money(item.get("price")),
            }
            for item in data.get("line_items") or []
        ],
        "currency": data.get("currency"),
        "paid": paid,
        "paid_at": (paid_at or datetime.now(UTC)) if paid else None,
        "shipping_address": {
            "name": _name(shipping.get("first_name"), shipping.get("last_name")),
            "phone": _phone(shipping.get("phone") or billing.get("phone")),
            "region": _region(shipping.get("country"), shipping.get("state")),
            "city": _text(shipping.get("city"), 100),
            "line1": _text(
                " ".join(p for p in (shipping.get("address_1"), shipping.get("address_2")) if p),
                300,
            ),
            "postal_code": _text(shipping.get("postcode"), 20),
        },
        "delivery_requirements": requirements,
        "notes": _text(data.get("customer_note"), 2000),
        "updated_at": _version(data.get("date_modified_gmt"))
        or _version(data.get("date_modified")),
    }
    cancelled = status in _WC_CANCELLED
    return PlatformOrder(
        CanonicalOrder.model_validate(canonical),
        cancelled=cancelled,
        cancel_reason=f"woocommerce status {status}" if cancelled else None,
        shipping_methods=[
            str(s.get(k))
            for s in data.get("shipping_lines") or []
            for k in ("method_title", "method_id")
            if s.get(k)
        ],
    )


# -- TOP-style marketplace trades (pull) --------------------------------------------------

_TOP_PAID = ("WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS", "TRADE_FINISHED")
_TOP_CANCELLED = ("TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO")


def from_top_trade(trade: dict[str, Any]) -> PlatformOrder:
    status = str(trade.get("status", ""))
    paid_at = _when(trade.get("pay_time"))
    paid = status in _TOP_PAID
    canonical = {
        "channel_order_id": str(trade.get("tid", "")),
        "customer": {
            "platform_user_id": str(trade.get("buyer_open_uid") or trade.get("buyer_nick") or ""),
            "name": _text(trade.get("receiver_name"), 200),
            "phone": _phone(trade.get("receiver_mobile")),
        },
        "lines": [
            {
                "sku": str(o.get("outer_sku_id") or o.get("sku_id") or o.get("num_iid")),
                "qty": o.get("num"),
                "unit_price": _money(o.get("price")),
            }
            for o in trade.get("orders") or []
        ],
        "currency": trade.get("currency") or "CNY",
        "paid": paid,
        "paid_at": (paid_at or datetime.now(UTC)) if paid else None,
        "shipping_address": {
            "name": _text(trade.get("receiver_name"), 200),
            "phone": _phone(trade.get("receiver_mobile")),
            "region": _text(trade.get("receiver_state"), 64) or "unknown",
            "city": _text(trade.get("receiver_city"), 100),
            "line1": _text(trade.get("receiver_address"), 300),
            "postal_code": _text(trade.get("receiver_zip"), 20),
        },
        "notes": _text(trade.get("buyer_message"), 2000),
        "updated_at": _version(trade.get("modified")),
    }
    cancelled = status in _TOP_CANCELLED
    return PlatformOrder(
        CanonicalOrder.model_validate(canonical),
        cancelled=cancelled,
        cancel_reason=f"marketplace status {status}" if cancelled else None,
        shipping_methods=_split(trade.get("shipping_type")),
    )
