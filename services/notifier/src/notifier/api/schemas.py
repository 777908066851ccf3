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
