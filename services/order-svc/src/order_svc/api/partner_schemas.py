"""What a sales channel sees of its orders (``/channels/{channel}/orders``).

Deliberately narrow: no customer, address, phone, e-mail, notes, reasons or routing. The
channel has its own copy of what its buyer told it; the OMS hands back only what the OMS
added (state, shipment, times).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class PartnerLineOut(BaseModel):
    line_no: int
    sku: str
    qty: int
    unit_price: Decimal


class PartnerOrderOut(BaseModel):
    id: uuid.UUID
    channel: str
    channel_order_id: str
    state: str
    currency: str
    total: Decimal
    lines: list[PartnerLineOut]
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    refunded_at: datetime | None


class PartnerOrderPage(BaseModel):
    items: list[PartnerOrderOut]
    total: int
    limit: int
    offset: int
