"""Alerts for people, raised by any service and delivered by notifier."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from oms_contracts.envelope import Event


class AlertRaised(Event):
    event_type: ClassVar[str] = "AlertRaised"
    key_field: ClassVar[str] = "subject"

    alert_id: uuid.UUID
    alert_type: str
    severity: Literal["info", "warning", "critical"]
    #: What the alert is about: an order id, a SKU, a customer id.
    subject: str
    message: str
    details: dict[str, Any] = {}
    raised_at: datetime
