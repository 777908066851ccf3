"""Response bodies of order-svc's API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from oms_contracts.events import Address, CustomerIdentity, OrderLine
from oms_contracts.events.common import Priority
from order_svc.api.routing_schemas import CustomerDataOut, RoutingOut
from order_svc.api.sla_schemas import OrderSlaOut


class LineOut(BaseModel):
    line_no: int
    sku: str
    qty: int
    unit_price: Decimal
    warehouse: str | None


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    at: datetime


class OrderSummary(BaseModel):
    id: uuid.UUID
    channel: str
    channel_order_id: str
    state: str
    customer_id: uuid.UUID | None
    currency: str
    total: Decimal
    priority: str
    exception_reason: str | None
    credit_degraded: bool = False
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummary):
    shipping_address: dict[str, Any]
    delivery_requirements: list[str]
    notes: str | None
    paid_at: datetime | None
    carrier: str | None = None
    tracking_number: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    refunded_at: datetime | None = None
    refund_reason: str | None = None
    lines: list[LineOut]
    history: list[TransitionOut]
    #: The routing decision and its scores (None until the order is routed).
    routing: RoutingOut | None = None
    #: The customer's delivery requirements and tags, copied onto the order.
    customer_requirements: list[str] = []
    customer_tags: list[str] = []
    customer_data: CustomerDataOut | None = None
    #: The order's SLA clocks (stage, deadline, when it ended, alerts sent).
    sla: list[OrderSlaOut] = []


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int


class CreditCallbackIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: uuid.UUID
    decision: Literal["approved", "refused"]
    reason: str | None = Field(default=None, max_length=500)
    check_id: str | None = Field(default=None, max_length=200)


class CreditCallbackOut(BaseModel):
    order_id: uuid.UUID
    #: ``applied`` (the order moved on) or ``late`` (after the budget: recorded only).
    status: Literal["applied", "late"]


class CustomerIn(CustomerIdentity):
    """The contract's customer identity, refusing unknown fields at the API edge."""

    model_config = ConfigDict(extra="forbid")


class LineIn(OrderLine):
    model_config = ConfigDict(extra="forbid")

    line_no: int = Field(ge=1, le=500)
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=100_000)
    unit_price: Decimal = Field(ge=0, le=Decimal("1000000"), decimal_places=2)


class AddressIn(Address):
    model_config = ConfigDict(extra="forbid")


class NewOrderIn(BaseModel):
    """An order placed directly by a front end (``POST /orders``)."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(default="direct", min_length=1, max_length=64)
    #: The front end's own reference; generated when absent.
    channel_order_id: str | None = Field(default=None, min_length=1, max_length=128)
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    currency: str = Field(min_length=3, max_length=3)
    paid: bool = False
    paid_at: datetime | None = None
    shipping_address: AddressIn
    delivery_requirements: list[str] = Field(default=[], max_length=50)
    notes: str | None = Field(default=None, max_length=2000)
    priority: Priority = "normal"

    @field_validator("lines")
    @classmethod
    def line_numbers_are_unique(cls, lines: list[LineIn]) -> list[LineIn]:
        """A line number names one line: two lines with the same number would collide in
        storage (a 500 the API fuzzer found); the caller is told which number, with a 422."""
        seen: set[int] = set()
        for line in lines:
            if line.line_no in seen:
                raise ValueError(f"line_no {line.line_no} is used by more than one line")
            seen.add(line.line_no)
        return lines


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=128)


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
