"""Handlers of the events that become alerts (and of the one that resolves them).

Every handler also records the event in the event log, as every notifier handler does.
The alert itself is made by a pure rule (:mod:`notifier.domain.rules`) and raised by
:func:`notifier.alerting.raise_alert`, which dedupes it and plans its deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from notifier.adapters.incidents import IncidentRepository
from notifier.adapters.repository import AlertRepository
from notifier.alerting import AlertingConfig, raise_alert
from notifier.domain import rules
from notifier.domain.rules import AlertSpec
from oms_contracts import Envelope, Event
from oms_contracts.events import (
    AlertRaised,
    ChannelSalesPaused,
    CreditCheckDegraded,
    CreditCheckRecovered,
    CustomerUpdated,
    OrderCancelled,
    OrderExceptionRaised,
    OrderExceptionResolved,
    SlaAtRisk,
    SlaBreached,
    StockLow,
    StockRejected,
)
from oms_messaging import Handler, UnitOfWork

Clock = Callable[[], datetime]
SERVICE = "notifier"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _spec_for(event: Event, envelope: Envelope) -> AlertSpec | None:
    """The alert an event calls for (None: not an alert event)."""
    if isinstance(event, SlaAtRisk):
        return rules.sla_at_risk(event)
    if isinstance(event, SlaBreached):
        return rules.sla_breached(event)
    if isinstance(event, StockLow):
        return rules.stock_low(event)
    if isinstance(event, ChannelSalesPaused):
        return rules.channel_sales_paused(event)
    if isinstance(event, OrderExceptionRaised):
        return None if rules.covered_by_incident(event) else rules.order_exception(event)
    if isinstance(event, StockRejected):
        return rules.stock_rejected(event, envelope.event_id)
    if isinstance(event, CustomerUpdated):
        return rules.customer_updated(event, envelope.event_id)
    if isinstance(event, OrderCancelled):
        return rules.channel_cancellation(event)
    return None


def alert_handlers(
    config: AlertingConfig | None = None, clock: Clock = utcnow
) -> dict[str, Handler]:
    """Handlers for every alert event, raising with ``config`` at ``clock()`` time."""
    config = config or AlertingConfig()

    async def on_alert_event(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        spec = _spec_for(event, envelope)
        if spec is not None:
            await raise_alert(uow, spec, source=SERVICE, now=clock(), config=config)

    async def on_alert_raised(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """Alerts raised by any service are stored and delivered (ours are stored
        already: a no-op then, by their id)."""
        assert isinstance(event, AlertRaised)
        await raise_alert(
            uow,
            rules.foreign_alert(event),
            source=envelope.producer,
            now=clock(),
            config=config,
            alert_id=event.alert_id,
            raised_at=event.raised_at,
            announce=False,
        )

    async def on_credit_degraded(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """One incident while checks degrade: the first order opens it (and is alerted,
        once), every later one only counts into it."""
        assert isinstance(event, CreditCheckDegraded)
        spec = rules.credit_check_degraded(event)
        incidents = IncidentRepository(uow.session)

        async def join() -> uuid.UUID | None:
            return await incidents.join(
                spec.dedupe_key,
                subject=spec.subject,
                order_id=event.order_id,
                at=event.degraded_at,
                template=rules.credit_incident_message("{n}", "{since}"),
            )

        if await join() is not None:
            return
        raised = await raise_alert(uow, spec, source=SERVICE, now=clock(), config=config)
        if raised is None:  # another consumer opened it meanwhile
            await join()

    async def on_credit_recovered(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """The bureau answers again: the incident closes (a new failure opens a new one)."""
        assert isinstance(event, CreditCheckRecovered)
        await AlertRepository(uow.session).resolve_live(
            rules.credit_incident_key(event.bureau),
            actor=envelope.producer,
            at=event.recovered_at,
        )

    async def on_exception_resolved(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """The cause is dealt with: its alert is resolved, so a new occurrence alerts again."""
        assert isinstance(event, OrderExceptionResolved)
        await AlertRepository(uow.session).resolve_live(
            rules.exception_key(event.cause, event.order_id),
            actor=event.actor,
            at=event.resolved_at,
        )

    handlers: dict[str, Handler] = {
        model.event_type: on_alert_event
        for model in (
            SlaAtRisk,
            SlaBreached,
            StockLow,
            ChannelSalesPaused,
            OrderExceptionRaised,
            StockRejected,
            CustomerUpdated,
            OrderCancelled,
        )
    }
    handlers[AlertRaised.event_type] = on_alert_raised
    handlers[CreditCheckDegraded.event_type] = on_credit_degraded
    handlers[CreditCheckRecovered.event_type] = on_credit_recovered
    handlers[OrderExceptionResolved.event_type] = on_exception_resolved
    return handlers
