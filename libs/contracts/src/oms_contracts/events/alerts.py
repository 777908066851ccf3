"""Alerts for people, raised by any service and delivered by notifier."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from oms_contracts.envelope import Event
from oms_contracts.owners import NOTIFIER, ORDER_SVC


class AlertRaised(Event):
    event_type: ClassVar[str] = "AlertRaised"
    owner: ClassVar[str] = NOTIFIER
    key_field: ClassVar[str] = "subject"

    alert_id: uuid.UUID
    alert_type: str
    severity: Literal["info", "warning", "critical"]
    #: What the alert is about: an order id, a SKU, a customer id.
    subject: str
    message: str
    details: dict[str, Any] = {}
    raised_at: datetime


class CreditCheckDegraded(Event):
    """The credit bureau did not answer in budget (or the breaker is open): the order went
    on as "credit OK" and is flagged for later review."""

    event_type: ClassVar[str] = "CreditCheckDegraded"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    reason: Literal["timeout", "breaker_open", "error"]
    detail: str | None = None
    degraded_at: datetime


class CreditCheckRecovered(Event):
    """The credit bureau answers again after checks had degraded (its breaker closed):
    the incident of degraded checks is over. The orders degraded meanwhile stay in the
    exception queue for review."""

    event_type: ClassVar[str] = "CreditCheckRecovered"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "bureau"

    #: Which bureau (one incident per bureau).
    bureau: str = "credit-bureau"
    recovered_at: datetime


class SlaAtRisk(Event):
    """An order has used 80 % of the time its SLA allows for a stage."""

    event_type: ClassVar[str] = "SlaAtRisk"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    order_class: str
    stage: str
    deadline: datetime
    raised_at: datetime


class SlaBreached(Event):
    """An order's SLA deadline for a stage passed (raised once per order and stage)."""

    event_type: ClassVar[str] = "SlaBreached"
    owner: ClassVar[str] = ORDER_SVC
    key_field: ClassVar[str] = "order_id"

    order_id: uuid.UUID
    channel: str
    order_class: str
    stage: str
    deadline: datetime
    raised_at: datetime
