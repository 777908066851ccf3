"""Alert events -> deduplicated alerts and their delivery plans, on real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.subscriptions import SubscriptionRepository
from notifier.adapters.tables import alerts, deliveries, digest_alerts, digests
from notifier.alerting import AlertingConfig
from oms_contracts import Event, make_envelope
from oms_contracts.events import (
    AlertRaised,
    CustomerUpdated,
    OrderExceptionRaised,
    OrderExceptionResolved,
    RejectedLine,
    SlaAtRisk,
    SlaBreached,
    StockLow,
    StockRejected,
)
from oms_messaging import UnitOfWork

T0 = datetime(2026, 11, 11, 10, 0, 5, tzinfo=UTC)


async def rows_of(db: async_sessionmaker[AsyncSession], table: Any) -> list[dict[str, Any]]:
    async with db() as session:
        return [dict(r._mapping) for r in await session.execute(select(table))]


async def subscribe(
    db: async_sessionmaker[AsyncSession],
    event_types: list[str],
    *,
    target_type: str = "webhook",
    target: str | None = "http://127.0.0.1:9/hook",
    channel: str | None = None,
    warehouse: str | None = None,
) -> uuid.UUID:
    sub_id = uuid.uuid4()
    async with UnitOfWork(db, producer="test") as uow:
        await SubscriptionRepository(uow.session).create(
            {
                "id": sub_id,
                "name": None,
                "event_types": event_types,
                "channel": channel,
                "warehouse": warehouse,
                "target_type": target_type,
                "target": None if target_type == "board" else target,
                "secret": "s3cret" if target_type == "webhook" else None,
            },
            operator="tester",
        )
        await uow.commit()
    return sub_id


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def dispatch(deliver, clock):
    alerting = AlertingConfig(digest_threshold=2)

    async def dispatch(event: Event, **kwargs: Any) -> list[Any]:
        return await deliver(event, at=clock.at, alerting=alerting, **kwargs)

    return dispatch


def rejected(order_id: uuid.UUID) -> StockRejected:
    return StockRejected(
        order_id=order_id,
        lines=[RejectedLine(line_no=1, sku="SKU-A", qty=1, reason="insufficient", available=0)],
        rejected_at=T0,
    )


def exception(order_id: uuid.UUID, cause: str = "stock_rejected") -> OrderExceptionRaised:
    return OrderExceptionRaised(
        exception_id=uuid.uuid4(),
        order_id=order_id,
        channel="web",
        cause=cause,  # type: ignore[arg-type]
        detail="no stock",
        raised_at=T0,
    )


def at_risk(order_id: uuid.UUID | None = None, channel: str = "web") -> SlaAtRisk:
    return SlaAtRisk(
        order_id=order_id or uuid.uuid4(),
        channel=channel,
        order_class="standard",
        stage="pick",
        deadline=T0 + timedelta(hours=1),
        raised_at=T0,
    )


async def test_one_alert_per_cause_and_order_whichever_event_comes_first(db, dispatch) -> None:
    sub = await subscribe(db, ["OrderExceptionRaised"])
    order = uuid.uuid4()

    first = await dispatch(rejected(order))
    second = await dispatch(exception(order, "stock_rejected"))

    [alert] = await rows_of(db, alerts)
    assert (alert["alert_type"], alert["event_type"]) == ("order_exception", "OrderExceptionRaised")
    assert alert["dedupe_key"] == f"stock_rejected:{order}"
    assert [e.event_type for e in first] == ["AlertRaised"]
    assert second == []  # nothing new: no second alert, no second announcement
    [delivery] = await rows_of(db, deliveries)
    assert (delivery["subscription_id"], delivery["alert_id"]) == (sub, alert["id"])
    assert (delivery["state"], delivery["attempts"]) == ("pending", 0)

    # Another cause of the same order is another alert.
    await dispatch(exception(order, "manual_review"))
    assert len(await rows_of(db, alerts)) == 2


def breached(order_id: uuid.UUID) -> SlaBreached:
    return SlaBreached(
        order_id=order_id,
        channel="web",
        order_class="normal",
        stage="review",
        deadline=T0,
        raised_at=T0,
    )


async def test_subscribers_of_either_event_of_one_cause_get_the_one_alert(db, dispatch) -> None:
    """An SLA breach arrives as SlaBreached and as OrderExceptionRaised(sla_breached), on
    two topics, in either order: one alert, delivered to the subscribers of both types,
    once each, however often the events come."""
    by_exception = await subscribe(db, ["OrderExceptionRaised"])
    by_breach = await subscribe(db, ["SlaBreached"], target="http://127.0.0.1:9/sla")
    order = uuid.uuid4()

    await dispatch(exception(order, "sla_breached"))
    await dispatch(breached(order))
    await dispatch(breached(order))  # the same cause again (a new event id): nothing new

    [alert] = await rows_of(db, alerts)
    planned = sorted((d["subscription_id"], d["alert_id"]) for d in await rows_of(db, deliveries))
    assert planned == sorted([(by_exception, alert["id"]), (by_breach, alert["id"])])


async def test_a_redelivered_event_sends_nothing_new(db, dispatch, read_outbox) -> None:
    await subscribe(db, ["SlaAtRisk"])
    event = at_risk()
    envelope = make_envelope(event, producer="order-svc")
    await dispatch(event, envelope=envelope)
    assert await dispatch(event, envelope=envelope) == []  # same consumer: the inbox
    # Another consumer group (a replay): the event log is every group's inbox.
    assert await dispatch(event, envelope=envelope, group_id="notifier-replay") == []
    # The same event under a new id (a producer that emitted it twice): the alert's
    # dedupe key still holds.
    assert await dispatch(event) == []
    assert len(await rows_of(db, alerts)) == 1
    assert len(await rows_of(db, deliveries)) == 1
    assert len(await read_outbox()) == 1


async def test_a_resolved_cause_alerts_again_when_it_recurs(db, dispatch) -> None:
    order = uuid.uuid4()
    await dispatch(exception(order, "credit_refused"))
    await dispatch(
        OrderExceptionResolved(
            exception_id=uuid.uuid4(),
            order_id=order,
            channel="web",
            cause="credit_refused",
            action="retry",
            actor="ops-1",
            resolved_at=T0,
        )
    )
    [resolved] = await rows_of(db, alerts)
    assert (resolved["state"], resolved["resolved_by"]) == ("resolved", "ops-1")
    await dispatch(exception(order, "credit_refused"))
    states = sorted(a["state"] for a in await rows_of(db, alerts))
    assert states == ["open", "resolved"]


async def test_filters_pick_the_subscriptions(db, dispatch) -> None:
    web = await subscribe(db, ["SlaAtRisk"], channel="web")
    shop = await subscribe(db, ["SlaAtRisk"], channel="shop")
    anyone = await subscribe(db, ["SlaAtRisk", "StockLow"])
    wh1 = await subscribe(db, ["StockLow"], warehouse="WH-1")
    await subscribe(db, ["SlaBreached"])

    await dispatch(at_risk(channel="web"))
    await dispatch(StockLow(sku="S", available=1, safety_stock=3, warehouse="WH-1", raised_at=T0))

    got = [(d["subscription_id"]) for d in await rows_of(db, deliveries)]
    assert sorted(map(str, got)) == sorted(map(str, [web, anyone, anyone, wh1]))
    assert shop not in got


async def test_board_targets_are_delivered_at_once(db, dispatch) -> None:
    await subscribe(db, ["SlaAtRisk"], target_type="board")
    await dispatch(at_risk())
    [delivery] = await rows_of(db, deliveries)
    assert delivery["state"] == "delivered" and delivery["delivered_at"] == T0


async def test_a_flood_of_one_cause_becomes_one_digest_per_minute_per_target(
    db, dispatch, clock
) -> None:
    hook = await subscribe(db, ["SlaAtRisk", "StockLow"])
    other = await subscribe(db, ["SlaAtRisk"], target="http://127.0.0.1:9/other")

    for _ in range(5):  # threshold 2: two on their own, three in the digest
        await dispatch(at_risk())
    # Another cause in the same minute counts on its own.
    await dispatch(StockLow(sku="S", available=0, safety_stock=3, raised_at=T0))
    # The next minute starts over.
    clock.at = T0 + timedelta(minutes=1)
    await dispatch(at_risk())

    rows = await rows_of(db, deliveries)
    for sub in (hook, other):
        mine = [d for d in rows if d["subscription_id"] == sub]
        direct = [d for d in mine if d["alert_id"] is not None]
        [digest_delivery] = [d for d in mine if d["digest_id"] is not None]
        assert len(direct) == (4 if sub == hook else 3)
        assert digest_delivery["next_attempt_at"] == datetime(
            2026, 11, 11, 10, 1, 2, tzinfo=UTC
        )  # the end of the minute (plus grace)
        members = [
            m
            for m in await rows_of(db, digest_alerts)
            if m["digest_id"] == digest_delivery["digest_id"]
        ]
        assert len(members) == 3
    [digest_hook, digest_other] = sorted(
        await rows_of(db, digests), key=lambda d: d["subscription_id"] != hook
    )
    assert digest_hook["alert_type"] == "sla_at_risk"
    assert digest_hook["window_start"] == datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    assert digest_other["subscription_id"] == other


async def test_customer_updates_are_forwarded_only_to_subscribers(db, dispatch, read_outbox):
    def updated() -> CustomerUpdated:
        return CustomerUpdated(
            customer_id=uuid.uuid4(),
            changed_fields=["delivery_requirements"],
            delivery_requirements=["cold_chain"],
            updated_at=T0,
        )

    await dispatch(updated())
    assert await rows_of(db, alerts) == []  # nobody subscribed: no alert at all

    await subscribe(db, ["CustomerUpdated"], target_type="email", target="wh@example.com")
    await dispatch(updated())
    [alert] = await rows_of(db, alerts)
    assert (alert["severity"], alert["event_type"]) == ("info", "CustomerUpdated")
    assert alert["details"]["delivery_requirements"] == ["cold_chain"]
    assert len(await rows_of(db, deliveries)) == 1
    assert await read_outbox() == []  # notices are not re-announced as AlertRaised


async def test_foreign_alerts_are_delivered_and_masked(db, dispatch, read_outbox) -> None:
    await subscribe(db, ["AlertRaised"], channel="web")
    alert = AlertRaised(
        alert_id=uuid.uuid4(),
        alert_type="payment_mismatch",
        severity="critical",
        subject="order-1",
        message="customer li@example.com paid twice",
        details={"channel": "web", "phone": "+8613800000001"},
        raised_at=T0,
    )
    await dispatch(alert, envelope=make_envelope(alert, producer="order-svc"))
    [stored] = await rows_of(db, alerts)
    assert "li@example.com" not in stored["message"]
    assert (
        stored["details"]["phone"].endswith("01") and "13800000" not in stored["details"]["phone"]
    )
    assert stored["source"] == "order-svc"
    assert len(await rows_of(db, deliveries)) == 1
    assert await read_outbox() == []
