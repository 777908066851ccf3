"""Answers of inventory-svc to a reservation request, keyed by order id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from oms_contracts.envelope import Event

RejectionReason = Literal["insufficient", "channel_cap", "channel_paused", "unknown_sku"]


class ReservedLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    sku: str
    qty: int
    warehouse: str


class RejectedLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_no: int
    sku: str
    qty: int
    reason: RejectionReason
    available: int | None = None


class StockReserved(Event):
    event_type: ClassVar[str] = "StockReserved"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    lines: list[ReservedLine]
    reserved_at: datetime


class StockRejected(Event):
    """No line was reserved; ``lines`` says why for each line that could not be."""

    event_type: ClassVar[str] = "StockRejected"
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    lines: list[RejectedLine]
    rejected_at: datetime
