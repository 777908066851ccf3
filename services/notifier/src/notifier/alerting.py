"""Raising an alert: store it once (dedupe), announce it, plan its deliveries.

Runs inside the unit of work of the event that caused the alert, so the alert, its
``AlertRaised`` and its delivery rows commit together with the inbox row: a redelivered
event finds its id in the inbox (and, from another consumer, the alert's dedupe key
taken) and plans nothing new.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from notifier.adapters.deliveries import DeliveryRepository
from notifier.adapters.repository import AlertRepository
from notifier.adapters.subscriptions import SubscriptionRepository
from notifier.domain.delivery import RetryPolicy, digest_due, goes_to_digest
from notifier.domain.rules import AlertSpec, window_start
from notifier.domain.subscriptions import SubscriptionView, matches
from notifier.pending_writes import current_transaction
from oms_contracts.events import AlertRaised
from oms_messaging import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertingConfig:
    #: More alerts than this per subscription, alert type and minute are digested.
    digest_threshold: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)


async def raise_alert(
    uow: UnitOfWork,
    spec: AlertSpec,
    *,
    source: str,
    now: datetime,
    config: AlertingConfig,
    alert_id: uuid.UUID | None = None,
    raised_at: datetime | None = None,
    announce: bool = True,
) -> uuid.UUID | None:
    """Store and deliver the alert ``spec`` describes; its id, or None if it was a
    duplicate (same id, or a live alert of the same cause and subject) or a notice
    nobody subscribed to. ``announce`` emits ``AlertRaised`` for other services."""
    session = uow.session
    wanted = await _matching(uow, spec)
    if spec.notice and not wanted:
        return None
    alert_id = alert_id or uuid.uuid4()
    raised_at = raised_at or now
    if not await AlertRepository(session).insert(
        spec, alert_id=alert_id, raised_at=raised_at, source=source
    ):
        log.info("alert deduplicated", extra={"dedupe_key": spec.dedupe_key})
        await _serve_late_subscribers(session, spec, wanted, now=now, config=config)
        return None
    if announce and not spec.notice:
        await uow.emit(
            AlertRaised(
                alert_id=alert_id,
                alert_type=spec.alert_type,
                severity=spec.severity,
                subject=spec.subject,
                message=spec.message,
                details=spec.details,
                raised_at=raised_at,
            )
        )
    await plan_deliveries(session, alert_id, spec, wanted, now=now, config=config)
    log.info(
        "alert raised",
        extra={
            "alert_type": spec.alert_type,
            "subject": spec.subject,
            "severity": spec.severity,
            "deliveries": len(wanted),
        },
    )
    return alert_id


async def _serve_late_subscribers(
    session: AsyncSession,
    spec: AlertSpec,
    wanted: list[dict[str, Any]],
    *,
    now: datetime,
    config: AlertingConfig,
) -> None:
    """The same cause reached us by another event type (an SLA breach and its exception
    event, say): subscribers of this type who have not had the live alert get it now."""
    if not wanted:
        return
    alert_id = await AlertRepository(session).live_id(spec.dedupe_key)
    if alert_id is None:
        return
    served = await DeliveryRepository(session).subscriptions_served(alert_id)
    late = [sub for sub in wanted if sub["id"] not in served]
    if late:
        await plan_deliveries(session, alert_id, spec, late, now=now, config=config)


#: Active subscriptions per event type, read once per transaction: a consumer transaction
#: applies a few hundred events, and a notice (``CustomerUpdated``, one per new customer)
#: looked its subscribers up once per event. A subscription created meanwhile counts from
#: the next transaction, as if this one had started a moment earlier.
_subscribers_read: weakref.WeakKeyDictionary[
    SessionTransaction, dict[str, list[dict[str, Any]]]
] = weakref.WeakKeyDictionary()


async def _subscribers(uow: UnitOfWork, event_type: str) -> list[dict[str, Any]]:
    read = _subscribers_read.setdefault(current_transaction(uow.session), {})
    if event_type not in read:
        read[event_type] = await SubscriptionRepository(uow.session).for_event_type(event_type)
    return read[event_type]


async def _matching(uow: UnitOfWork, spec: AlertSpec) -> list[dict[str, Any]]:
    candidates = await _subscribers(uow, spec.event_type)
    return [
        s
        for s in candidates
        if matches(
            SubscriptionView(s["event_types"], s["channel"], s["warehouse"]),
            event_type=spec.event_type,
            channel=spec.channel,
            warehouse=spec.warehouse,
        )
    ]


async def plan_deliveries(
    session: AsyncSession,
    alert_id: uuid.UUID,
    spec: AlertSpec,
    wanted: list[dict[str, Any]],
    *,
    now: datetime,
    config: AlertingConfig,
) -> None:
    """One delivery per subscription, or a place in this minute's digest.

    The board needs no sending (it shows the stored alerts): its delivery is done at
    once. Subscriptions are taken in id order so concurrent alerts lock the per-minute
    counters in the same order.
    """
    repo = DeliveryRepository(session)
    max_age = timedelta(seconds=config.retry.max_age_s)
    window = window_start(now)
    for sub in sorted(wanted, key=lambda s: str(s["id"])):
        if sub["target_type"] == "board":
            await repo.add(
                subscription_id=sub["id"],
                alert_id=alert_id,
                now=now,
                give_up_at=now,
                delivered=True,
            )
            continue
        count, digest_id = await repo.count_in_window(sub["id"], spec.digest_group, window)
        if not goes_to_digest(count, config.digest_threshold):
            await repo.add(
                subscription_id=sub["id"], alert_id=alert_id, now=now, give_up_at=now + max_age
            )
            continue
        if digest_id is None:
            digest_id = await repo.create_digest(sub["id"], spec.digest_group, window)
            due = digest_due(window)
            await repo.add(
                subscription_id=sub["id"],
                digest_id=digest_id,
                now=now,
                next_attempt_at=due,
                give_up_at=due + max_age,
            )
        await repo.add_to_digest(digest_id, alert_id)
