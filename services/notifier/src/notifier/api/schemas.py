"""Response bodies of notifier's API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class EventOut(BaseModel):
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    key: str
    producer: str
    correlation_id: str
    causation_id: str | None
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any]


class DeliveryOut(BaseModel):
    """One delivery of an alert: to a subscription directly, or inside a digest."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    target_type: str
    #: Set when the alert went out in this minute's digest rather than on its own.
    digest_id: uuid.UUID | None = None
    state: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class AlertOut(BaseModel):
    id: uuid.UUID
    alert_type: str
    severity: str
    subject: str
    message: str
    details: dict[str, Any]
    source: str
    raised_at: datetime
    state: str
    #: What subscriptions match on (SlaBreached, OrderExceptionRaised, ...).
    event_type: str | None = None
    channel: str | None = None
    warehouse: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    #: All deliveries together: none, pending, delivered, failed or cancelled.
    delivery_state: str = "none"
    deliveries: list[DeliveryOut] = []
