"""Event handlers of notifier: every event of every topic is logged once (as it is
admitted: the event log is the consumer's inbox, ``EventLogInbox``); alert
events (SLA, stock, channel pauses, credit, exception orders, stock rejections, customer
updates for subscribers) raise deduplicated alerts with their deliveries; alerts raised
anywhere are stored and delivered."""

from __future__ import annotations

import logging

from notifier.adapters.repository import EventLogInbox
from notifier.alert_handlers import Clock, alert_handlers, utcnow
from notifier.alerting import AlertingConfig
from notifier.board_projection import with_board_projection
from oms_contracts import REGISTRY, Envelope, Event, EventRegistry
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

log = logging.getLogger(__name__)

GROUP_ID = "notifier"
#: Where the consumer admits events: the event log (see ``EventLogInbox``).
INBOX = EventLogInbox()
SERVICE = "notifier"


async def record_event(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    """Nothing more than the log row, which the inbox wrote when it admitted the event.
    (Every type needs a handler all the same: the runner skips a type without one.)"""


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
            inbox=INBOX,
        )
    ]
