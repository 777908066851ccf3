"""Event handlers of notifier: every event of every topic is recorded once; alert
events (SLA, stock, channel pauses, credit, exception orders, stock rejections, customer
updates for subscribers) raise deduplicated alerts with their deliveries; alerts raised
anywhere are stored and delivered."""

from __future__ import annotations

import logging

from notifier.alert_handlers import Clock, alert_handlers, utcnow
from notifier.alerting import AlertingConfig
from notifier.board_projection import with_board_projection
from notifier.pending_writes import pending_writes
from oms_contracts import REGISTRY, Envelope, Event, EventRegistry
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

log = logging.getLogger(__name__)

GROUP_ID = "notifier"
SERVICE = "notifier"


async def record_event(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    """Keep the event in the log (the inbox already dedupes; the key guards the rest),
    written with the transaction's other events just before it commits."""
    pending_writes(uow).record_event(envelope)


def event_handlers(
    registry: EventRegistry = REGISTRY,
    *,
    alerting: AlertingConfig | None = None,
    clock: Clock = utcnow,
) -> dict[str, Handler]:
    """A handler for every event type the contracts know; alert events raise alerts
    (see :mod:`notifier.alert_handlers`)."""
    handlers: dict[str, Handler] = {m.event_type: record_event for m in registry.models()}
    handlers.update(alert_handlers(alerting, clock))
    return with_board_projection(handlers)


def consumer_specs(alerting: AlertingConfig | None = None) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=GROUP_ID,
            topics=[t.value for t in Topic],
            handlers=event_handlers(alerting=alerting),
        )
    ]
