"""The canonical order: what every channel adapter produces, and its validation rules.

The `generic` webhook accepts it as is; platform adapters (Shopify, WooCommerce, pull
connectors) map their formats onto it. It becomes the `OrderReceived` event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from oms_contracts.events import Address, CustomerIdentity, OrderLine, OrderReceived
from oms_contracts.events.common import PaymentTerms

Text = Field(min_length=1, max_length=200)
MAX_LINES = 200


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Strict):
    platform_user_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{3,32}$")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AddressIn(Strict):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()\-]{3,32}$")
    region: str = Field(min_length=1, max_length=64)
    city: str | None = Field(default=None, max_length=100)
    line1: str | None = Field(default=None, max_length=300)
    postal_code: str | None = Field(default=None, max_length=20)


class LineIn(Strict):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=10_000)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class CanonicalOrder(Strict):
    channel_order_id: str = Field(min_length=1, max_length=128)
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    paid: bool = False
    paid_at: AwareDatetime | None = None
    shipping_address: AddressIn
    delivery_requirements: list[str] = Field(default_factory=list, max_length=16)
    notes: str | None = Field(default=None, max_length=2000)
    priority: Literal["normal", "urgent"] = "normal"
    #: How the buyer pays (``prepaid``, ``on_account``, ``cash_on_delivery``): terms
    #: other than prepaid ask order-svc for a credit check.
    payment_terms: PaymentTerms = "prepaid"
    #: The channel cancelled the order (a later delivery of the same order id).
    cancelled: bool = False
    cancel_reason: str | None = Field(default=None, max_length=200)
    #: The channel's own time of this version of the order: a delivery older than the
    #: one applied is stale and changes nothing. Without it, deliveries apply in arrival
    #: order.
    updated_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _paid_orders_say_when(self) -> CanonicalOrder:
        if self.paid and self.paid_at is None:
            raise ValueError("paid_at is required when paid is true")
        return self

    def to_event(
        self, *, channel: str, order_id: uuid.UUID, received_at: datetime
    ) -> OrderReceived:
        return OrderReceived(
            order_id=order_id,
            channel=channel,
            channel_order_id=self.channel_order_id,
            customer=CustomerIdentity(**self.customer.model_dump()),
            lines=[
                OrderLine(line_no=i, sku=line.sku, qty=line.qty, unit_price=line.unit_price)
                for i, line in enumerate(self.lines, start=1)
            ],
            currency=self.currency,
            paid=self.paid,
            paid_at=self.paid_at,
            shipping_address=Address(**self.shipping_address.model_dump()),
            delivery_requirements=self.delivery_requirements,
            notes=self.notes,
            priority=self.priority,
            payment_terms=self.payment_terms,
            received_at=received_at,
            channel_updated_at=self.updated_at,
        )
