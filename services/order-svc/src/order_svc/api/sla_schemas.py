"""Request and response bodies of the SLA and exception-queue API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from oms_contracts.events import ExceptionCause


class OrderSlaOut(BaseModel):
    """One SLA clock of an order, as stored with it."""

    stage: str
    order_class: str
    started_at: datetime
    deadline_at: datetime
    ended_at: datetime | None
    ended_state: str | None
    at_risk_sent_at: datetime | None
    breached_sent_at: datetime | None


class OpenSlaItem(BaseModel):
    """One running clock: how long the order has left in its stage (negative = late)."""

    order_id: uuid.UUID
    channel_order_id: str | None
    channel: str
    order_class: str
    stage: str
    #: The order's current state (null if the order row is not readable yet).
    state: str | None
    started_at: datetime
    deadline: datetime
    seconds_left: float
    at_risk: bool
    breached: bool


class OpenSlaPage(BaseModel):
    items: list[OpenSlaItem]
    total: int
    limit: int
    offset: int
    as_of: datetime


class SlaStageStats(BaseModel):
    """Time in one stage for one channel and class (both null: over all of them)."""

    #: ``state``: time in an order state; ``sla``: an SLA stage (e.g. review).
    kind: Literal["state", "sla"]
    stage: str
    channel: str | None
    order_class: str | None
    #: Completed stays (the times are over these).
    count: int
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    #: SLA stages only: clocks past their deadline, over those decided (met or late).
    breached: int | None
    breach_rate: float | None


class SlaReport(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    stages: list[SlaStageStats]


class ExceptionOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    channel: str
    cause: ExceptionCause
    detail: str | None
    state: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    action: Literal["retry", "release", "cancel"] | None
    note: str | None
    #: The order's current state.
    order_state: str | None = None


class ExceptionPage(BaseModel):
    items: list[ExceptionOut]
    total: int
    limit: int
    offset: int


class CauseStats(BaseModel):
    cause: ExceptionCause
    open: int
    resolved: int
    oldest_open_at: datetime | None


class ExceptionStats(BaseModel):
    open: int
    resolved: int
    by_cause: list[CauseStats]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "release", "cancel"]
    note: str | None = Field(default=None, max_length=500)
