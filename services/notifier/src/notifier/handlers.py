"""Event handlers of notifier: every event of every topic is recorded once; a stock
rejection raises an order-exception alert; alerts raised anywhere are stored."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from notifier.adapters.repository import AlertRepository, EventLog
from notifier.domain.alerts import (
    ORDER_EXCEPTION,
    LineRejection,
    rejection_reasons,
    stock_rejection_message,
)
from oms_contracts import REGISTRY, Envelope, Event, EventRegistry
from oms_contracts.events import AlertRaised, StockRejected
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

log = logging.getLogger(__name__)

GROUP_ID = "notifier"
SERVICE = "notifier"


async def record_event(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    """Keep the event in the log (the inbox already dedupes; the key guards the rest)."""
    await EventLog(uow.session).record(envelope)


async def on_stock_rejected(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, StockRejected)
    await record_event(uow, envelope, event)
    lines = [
        LineRejection(ln.line_no, ln.sku, ln.qty, ln.reason, ln.available) for ln in event.lines
    ]
    alert = AlertRaised(
        alert_id=uuid.uuid4(),
        alert_type=ORDER_EXCEPTION,
        severity="warning",
        subject=str(event.order_id),
        message=stock_rejection_message(lines),
        details={
            "order_id": str(event.order_id),
            "reasons": rejection_reasons(lines),
            "lines": [ln.model_dump(mode="json") for ln in event.lines],
            "rejected_at": event.rejected_at.isoformat(),
            "source_event_id": str(envelope.event_id),
        },
        raised_at=datetime.now(UTC),
    )
    await AlertRepository(uow.session).add(alert, source=SERVICE)
    await uow.emit(alert)
    log.info(
        "alert raised",
        extra={"alert_type": alert.alert_type, "subject": alert.subject, "severity": "warning"},
    )


async def on_alert_raised(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    """Alerts raised by any service are stored too (ours are already: a no-op then)."""
    assert isinstance(event, AlertRaised)
    await record_event(uow, envelope, event)
    await AlertRepository(uow.session).add(event, source=envelope.producer)


def event_handlers(registry: EventRegistry = REGISTRY) -> dict[str, Handler]:
    """A handler for every event type the contracts know."""
    handlers: dict[str, Handler] = {m.event_type: record_event for m in registry.models()}
    handlers[StockRejected.event_type] = on_stock_rejected
    handlers[AlertRaised.event_type] = on_alert_raised
    return handlers


def consumer_specs() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(group_id=GROUP_ID, topics=[t.value for t in Topic], handlers=event_handlers())
    ]
