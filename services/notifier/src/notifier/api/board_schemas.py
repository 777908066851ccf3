"""Response bodies of the operations board's JSON API (``/board/api/...``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class CountsOut(BaseModel):
    #: Orders per state, then per channel.
    cells: dict[str, dict[str, int]]
    by_state: dict[str, int]
    by_channel: dict[str, int]
    total: int


class SlaItem(BaseModel):
    order_id: uuid.UUID
    channel: str | None
    channel_order_id: str | None
    state: str | None
    sla_stage: str | None
    sla_deadline: datetime
    #: ``at_risk`` or ``breached``.
    sla_status: str | None
    #: Negative once the deadline has passed.
    seconds_left: int


class ExceptionItem(BaseModel):
    order_id: uuid.UUID
    cause: str
    exception_id: uuid.UUID | None
    channel: str | None
    detail: str | None
    raised_at: datetime
    state: str | None
    channel_order_id: str | None


class CreditItem(BaseModel):
    order_id: uuid.UUID
    channel: str | None
    channel_order_id: str | None
    state: str | None
    credit_reason: str | None
    credit_degraded_at: datetime | None


class Paged(BaseModel):
    total: int
    limit: int
    offset: int


class SlaPage(Paged):
    items: list[SlaItem]


class ExceptionPage(Paged):
    items: list[ExceptionItem]
    #: Open exceptions per cause (all of them, whatever the filter).
    by_cause: dict[str, int]


class CreditPage(Paged):
    items: list[CreditItem]


class OpenAlert(BaseModel):
    id: uuid.UUID
    alert_type: str
    severity: str
    subject: str
    message: str
    raised_at: datetime
    state: str


class LowStock(BaseModel):
    sku: str
    warehouse: str | None
    available: int
    safety_stock: int
    raised_at: datetime


class PausedChannel(BaseModel):
    sku: str
    channel: str
    reason: str
    changed_at: datetime


class AlertsOut(BaseModel):
    open: list[OpenAlert]
    open_total: int
    low_stock: list[LowStock]
    paused_channels: list[PausedChannel]


class PeerOut(BaseModel):
    """Data from another service, or why it is not shown."""

    available: bool
    data: Any = None
    reason: str | None = None


class TimelineEntry(BaseModel):
    event_id: uuid.UUID
    event_type: str
    producer: str
    occurred_at: datetime
    payload: dict[str, Any]


class OrderPageOut(BaseModel):
    order_id: uuid.UUID
    #: The board's read model of the order (None if no event about it arrived yet).
    board: dict[str, Any] | None
    exceptions: list[dict[str, Any]]
    #: The order's events as notifier saw them, oldest first (the state timeline).
    timeline: list[TimelineEntry]
    routing: dict[str, Any] | None
    #: order-svc's order with its history and lines.
    order: PeerOut
    picklist: PeerOut
    #: A summary of customer-svc's card of the order's customer.
    customer: PeerOut
