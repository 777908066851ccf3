"""Degraded credit checks are one incident alert (opened, orders counted, closed), not an
alert per order; the events go through the service's production consumers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.subscriptions import SubscriptionRepository
from notifier.adapters.tables import alerts, deliveries
from notifier.alerting import AlertingConfig
from oms_contracts.events import CreditCheckDegraded, CreditCheckRecovered, OrderExceptionRaised
from oms_messaging import UnitOfWork

T0 = datetime(2026, 11, 11, 10, 0, 5, tzinfo=UTC)
ALERTING = AlertingConfig(digest_threshold=100)


async def alert_rows(db: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with db() as session:
        rows = await session.execute(select(alerts).order_by(alerts.c.raised_at))
        return [dict(r._mapping) for r in rows]


async def delivery_count(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return len((await session.execute(select(deliveries.c.id))).all())


async def subscribe_webhook(db: async_sessionmaker[AsyncSession]) -> None:
    async with UnitOfWork(db, producer="test") as uow:
        await SubscriptionRepository(uow.session).create(
            {
                "id": uuid.uuid4(),
                "name": "credit desk",
                "event_types": ["CreditCheckDegraded", "OrderExceptionRaised"],
                "channel": None,
                "warehouse": None,
                "target_type": "webhook",
                "target": "http://127.0.0.1:9/hook",
                "secret": "s3cret",
            },
            operator="tester",
        )
        await uow.commit()


def degraded(at: datetime, reason: str = "breaker_open") -> CreditCheckDegraded:
    return CreditCheckDegraded(
        order_id=uuid.uuid4(),
        channel="distributor",
        reason=reason,  # type: ignore[arg-type]
        detail="circuit credit-bureau is open",
        degraded_at=at,
    )


def flagged(event: CreditCheckDegraded) -> OrderExceptionRaised:
    """The advisory exception order-svc opens with every degraded check."""
    return OrderExceptionRaised(
        exception_id=uuid.uuid4(),
        order_id=event.order_id,
        channel=event.channel,
        cause="credit_degraded",
        detail=event.reason,
        raised_at=event.degraded_at,
    )


async def test_a_burst_of_degraded_checks_is_one_incident_until_the_bureau_answers(
    db: async_sessionmaker[AsyncSession], deliver: Any
) -> None:
    await subscribe_webhook(db)
    burst = [
        degraded(T0 + timedelta(seconds=i), "timeout" if i < 2 else "breaker_open")
        for i in range(5)
    ]
    announced = []
    for event in burst:
        announced += await deliver(event, at=event.degraded_at, alerting=ALERTING)
        await deliver(flagged(event), at=event.degraded_at, alerting=ALERTING)

    [incident] = await alert_rows(db)
    assert (incident["alert_type"], incident["state"]) == ("credit_incident", "open")
    assert incident["details"]["orders_affected"] == 5
    assert incident["details"]["first_order_id"] == str(burst[0].order_id)
    assert incident["details"]["last_order_id"] == str(burst[-1].order_id)
    assert "5 order(s) so far" in incident["message"]
    assert [e.event_type for e in announced] == ["AlertRaised"]  # announced once
    assert await delivery_count(db) == 1  # one webhook call for the whole burst

    closed_at = T0 + timedelta(minutes=1)
    await deliver(CreditCheckRecovered(recovered_at=closed_at), alerting=ALERTING)
    [incident] = await alert_rows(db)
    assert (incident["state"], incident["resolved_at"]) == ("resolved", closed_at)

    # An order degraded before the end, whose event arrives after it, counts in that one.
    await deliver(degraded(T0 + timedelta(seconds=30)), alerting=ALERTING)
    [incident] = await alert_rows(db)
    assert (incident["state"], incident["details"]["orders_affected"]) == ("resolved", 6)

    # A new failure after the end is a new incident, alerted again.
    again = await deliver(degraded(closed_at + timedelta(minutes=5)), alerting=ALERTING)
    closed, new = await alert_rows(db)
    assert closed["details"]["orders_affected"] == 6
    assert (new["state"], new["details"]["orders_affected"]) == ("open", 1)
    assert [e.event_type for e in again] == ["AlertRaised"]
    assert await delivery_count(db) == 2


async def test_other_exceptions_still_alert_per_order(
    db: async_sessionmaker[AsyncSession], deliver: Any
) -> None:
    event = degraded(T0)
    refused = flagged(event).model_copy(update={"cause": "credit_refused"})
    assert await deliver(flagged(event), alerting=ALERTING) == []  # the incident covers it
    assert [e.event_type for e in await deliver(refused, alerting=ALERTING)] == ["AlertRaised"]
    [alert] = await alert_rows(db)
    assert alert["dedupe_key"] == f"credit_refused:{event.order_id}"
