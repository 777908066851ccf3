"""Which events become alerts, what they say, and the key that dedupes them. Pure.

An alert is identified for deduplication by its cause and its subject (an order, a SKU
in a warehouse, a channel pause): two events of the same cause about the same order make
one alert, whichever arrives first. That is how a stock rejection seen both as
``StockRejected`` and as ``OrderExceptionRaised(cause=stock_rejected)`` is alerted once.

Degraded credit checks are one incident, not an alert per order: the first
``CreditCheckDegraded`` opens it, the next ones count the orders affected so far, and
``CreditCheckRecovered`` (the bureau answers again) closes it;
``OrderExceptionRaised(credit_degraded)`` raises nothing (the incident covers it).

Alert payloads never carry customers' contact data: free text from other services goes
through :func:`scrub` (e-mail addresses and phone numbers masked).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from notifier.domain.alerts import (
    ORDER_EXCEPTION,
    LineRejection,
    rejection_reasons,
    stock_rejection_message,
)
from oms_contracts.events import (
    AlertRaised,
    ChannelSalesPaused,
    CreditCheckDegraded,
    CustomerUpdated,
    OrderCancelled,
    OrderExceptionRaised,
    SlaAtRisk,
    SlaBreached,
    StockLow,
    StockRejected,
)
from oms_servicekit.personal_data import scrub

Severity = Literal["info", "warning", "critical"]

#: The event types a subscription may name. Exception orders are ``OrderExceptionRaised``
#: (a stock rejection is one, whichever of its two events raised the alert);
#: ``AlertRaised`` is any alert raised by another service.
SUBSCRIBABLE_EVENT_TYPES: tuple[str, ...] = (
    "SlaAtRisk",
    "SlaBreached",
    "StockLow",
    "ChannelSalesPaused",
    "CreditCheckDegraded",
    "OrderExceptionRaised",
    "CustomerUpdated",
    "AlertRaised",
    "OrderCancelled",
)

#: Causes of ``OrderExceptionRaised`` that are critical rather than a warning.
CRITICAL_CAUSES = frozenset({"sla_breached", "credit_refused"})


@dataclass(frozen=True)
class AlertSpec:
    """An alert to raise, before it has an id and a delivery plan."""

    #: What subscriptions match on (one of :data:`SUBSCRIBABLE_EVENT_TYPES`).
    event_type: str
    #: The cause, in snake case (``sla_breached``, ``stock_low``, ...).
    alert_type: str
    severity: Severity
    subject: str
    message: str
    dedupe_key: str
    details: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None
    warehouse: str | None = None
    #: True for forwarded notices (CustomerUpdated): raised only where someone
    #: subscribed, and not re-announced as ``AlertRaised``.
    notice: bool = False
    #: The cause, where the alert type is broader (order exceptions); digests group by it.
    cause: str | None = None

    @property
    def digest_group(self) -> str:
        """What "the same cause" means for digests."""
        return self.cause or self.alert_type


def exception_key(cause: str, order_id: uuid.UUID | str) -> str:
    """The dedupe key of an order exception: one alert per cause and order."""
    return f"{cause}:{order_id}"


def sla_details(event: SlaAtRisk | SlaBreached) -> dict[str, str]:
    """What an SLA alert carries (no personal data: the order id says where to look)."""
    return {
        "order_id": str(event.order_id),
        "channel": event.channel,
        "order_class": event.order_class,
        "stage": event.stage,
        "deadline": event.deadline.isoformat(),
    }


def sla_at_risk(event: SlaAtRisk) -> AlertSpec:
    return AlertSpec(
        event_type="SlaAtRisk",
        alert_type="sla_at_risk",
        severity="warning",
        subject=str(event.order_id),
        message=(
            f"order {event.order_id} at risk of missing its {event.stage} SLA"
            f" (deadline {event.deadline.isoformat()})"
        ),
        dedupe_key=f"sla_at_risk:{event.order_id}:{event.stage}",
        details=sla_details(event),
        channel=event.channel,
    )


def sla_breached(event: SlaBreached) -> AlertSpec:
    return AlertSpec(
        event_type="SlaBreached",
        alert_type="sla_breached",
        severity="critical",
        subject=str(event.order_id),
        message=(
            f"order {event.order_id} missed its {event.stage} SLA"
            f" (deadline {event.deadline.isoformat()})"
        ),
        # The same cause as OrderExceptionRaised(sla_breached): one alert per order.
        dedupe_key=exception_key("sla_breached", event.order_id),
        details=sla_details(event),
        channel=event.channel,
    )


def stock_low(event: StockLow) -> AlertSpec:
    where = f" in {event.warehouse}" if event.warehouse else ""
    return AlertSpec(
        event_type="StockLow",
        alert_type="stock_low",
        severity="warning",
        subject=event.sku,
        message=(
            f"{event.sku}{where}: available {event.available} below safety stock"
            f" {event.safety_stock}"
        ),
        # Raised once per crossing: the crossing's time tells two crossings apart.
        dedupe_key=f"stock_low:{event.sku}:{event.warehouse or '*'}:{event.raised_at.isoformat()}",
        details={
            "sku": event.sku,
            "warehouse": event.warehouse,
            "available": event.available,
            "safety_stock": event.safety_stock,
        },
        warehouse=event.warehouse,
    )


def channel_sales_paused(event: ChannelSalesPaused) -> AlertSpec:
    return AlertSpec(
        event_type="ChannelSalesPaused",
        alert_type="channel_sales_paused",
        severity="warning",
        subject=event.sku,
        message=f"sales of {event.sku} on {event.channel} paused: {scrub(event.reason)}",
        dedupe_key=(
            f"channel_sales_paused:{event.sku}:{event.channel}:{event.paused_at.isoformat()}"
        ),
        details={"sku": event.sku, "channel": event.channel, "reason": scrub(event.reason)},
        channel=event.channel,
    )


#: The one live incident of degraded credit checks (per bureau): a burst of degraded
#: orders while the bureau is down or its breaker open is one alert, not one per order.
CREDIT_INCIDENT = "credit_incident"
#: Exception causes an incident alert covers: their orders stay in order-svc's exception
#: queue, each to review, but raise no alert of their own.
INCIDENT_CAUSES = frozenset({"credit_degraded"})


def credit_incident_key(bureau: str = "credit-bureau") -> str:
    return f"{CREDIT_INCIDENT}:{bureau}"


def credit_incident_message(orders_affected: int | str, since: str) -> str:
    return (
        f"credit checks degraded since {since}: {orders_affected} order(s) so far went on"
        " as credit OK and await review in the exception queue (cause credit_degraded)"
    )


def credit_check_degraded(event: CreditCheckDegraded) -> AlertSpec:
    """The incident a degraded check opens (or joins: then only its count grows)."""
    since = event.degraded_at.isoformat()
    return AlertSpec(
        event_type="CreditCheckDegraded",
        alert_type=CREDIT_INCIDENT,
        severity="warning",
        subject="credit-bureau",
        message=credit_incident_message(1, since),
        dedupe_key=credit_incident_key(),
        details={
            "orders_affected": 1,
            "since": since,
            "first_order_id": str(event.order_id),
            "last_order_id": str(event.order_id),
            "reason": event.reason,
            "detail": scrub(event.detail),
        },
    )


def covered_by_incident(event: OrderExceptionRaised) -> bool:
    """An exception whose alert is an incident's (no alert of its own)."""
    return event.cause in INCIDENT_CAUSES


def order_exception(event: OrderExceptionRaised) -> AlertSpec:
    detail = scrub(event.detail)
    return AlertSpec(
        event_type="OrderExceptionRaised",
        alert_type=ORDER_EXCEPTION,
        cause=event.cause,
        severity="critical" if event.cause in CRITICAL_CAUSES else "warning",
        subject=str(event.order_id),
        message=f"order {event.order_id} needs attention: {event.cause}"
        + (f" ({detail})" if detail else ""),
        dedupe_key=exception_key(event.cause, event.order_id),
        details={
            "order_id": str(event.order_id),
            "exception_id": str(event.exception_id),
            "channel": event.channel,
            "cause": event.cause,
            "detail": detail,
        },
        channel=event.channel,
    )


#: The actor prefix of cancellations a channel made (order-svc names them so).
CHANNEL_ACTOR_PREFIX = "channel:"


def channel_cancellation(event: OrderCancelled) -> AlertSpec | None:
    """A channel cancelled an order: the warehouse and customer service must know (an
    operator's own cancellation needs no alert: they made it)."""
    if not event.actor.startswith(CHANNEL_ACTOR_PREFIX):
        return None
    return AlertSpec(
        event_type="OrderCancelled",
        alert_type="channel_cancelled",
        severity="info",
        subject=str(event.order_id),
        message=f"order {event.order_id} was cancelled by channel {event.channel}"
        f" ({scrub(event.reason)}); its stock is released",
        dedupe_key=f"channel_cancelled:{event.order_id}",
        details={
            "order_id": str(event.order_id),
            "channel": event.channel,
            "reason": scrub(event.reason),
            "cancelled_at": event.cancelled_at.isoformat(),
        },
        channel=event.channel,
    )


def stock_rejected(event: StockRejected, source_event_id: uuid.UUID) -> AlertSpec:
    """A stock rejection is an exception order of cause ``stock_rejected``: the same
    alert as ``OrderExceptionRaised(stock_rejected)`` of the order, whichever comes first."""
    lines = [
        LineRejection(ln.line_no, ln.sku, ln.qty, ln.reason, ln.available) for ln in event.lines
    ]
    return AlertSpec(
        event_type="OrderExceptionRaised",
        alert_type=ORDER_EXCEPTION,
        cause="stock_rejected",
        severity="warning",
        subject=str(event.order_id),
        message=stock_rejection_message(lines),
        dedupe_key=exception_key("stock_rejected", event.order_id),
        details={
            "order_id": str(event.order_id),
            "cause": "stock_rejected",
            "reasons": rejection_reasons(lines),
            "lines": [ln.model_dump(mode="json") for ln in event.lines],
            "rejected_at": event.rejected_at.isoformat(),
            "source_event_id": str(source_event_id),
        },
        warehouse=None,
    )


def customer_updated(event: CustomerUpdated, event_id: uuid.UUID) -> AlertSpec:
    """A forwarded notice for the departments that subscribed; ids and field names only."""
    return AlertSpec(
        event_type="CustomerUpdated",
        alert_type="customer_updated",
        severity="info",
        subject=str(event.customer_id),
        message=(
            f"customer {event.customer_id} updated: {', '.join(event.changed_fields) or 'n/a'}"
        ),
        dedupe_key=f"customer_updated:{event_id}",
        details={
            "customer_id": str(event.customer_id),
            "changed_fields": list(event.changed_fields),
            "delivery_requirements": list(event.delivery_requirements),
            "tags": list(event.tags),
            "updated_at": event.updated_at.isoformat(),
        },
        notice=True,
    )


def foreign_alert(event: AlertRaised) -> AlertSpec:
    """An alert another service raised, as notifier stores and forwards it."""
    details = {k: scrub(v) if isinstance(v, str) else v for k, v in event.details.items()}
    channel = details.get("channel")
    warehouse = details.get("warehouse")
    return AlertSpec(
        event_type="AlertRaised",
        alert_type=event.alert_type,
        severity=event.severity,
        subject=event.subject,
        message=scrub(event.message) or "",
        dedupe_key=f"alert:{event.alert_id}",
        details=details,
        channel=channel if isinstance(channel, str) else None,
        warehouse=warehouse if isinstance(warehouse, str) else None,
    )


def window_start(at: datetime) -> datetime:
    """The start of the minute ``at`` falls in (digests group alerts per minute)."""
    return at.replace(second=0, microsecond=0)
