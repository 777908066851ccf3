"""Response bodies of order-svc's API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


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
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummary):
    shipping_address: dict[str, Any]
    delivery_requirements: list[str]
    notes: str | None
    paid_at: datetime | None
    lines: list[LineOut]
    history: list[TransitionOut]


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int
