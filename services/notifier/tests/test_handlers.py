"""notifier's handlers on a real PostgreSQL database, fed through
the production consumers on a real broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.tables import alerts, events
from notifier.handlers import GROUP_ID, consumer_specs
from oms_contracts import REGISTRY, Event, make_envelope
from oms_contracts.events import (
    AlertRaised,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    RejectedLine,
    StockRejected,
)
from oms_contracts.topics import Topic


async def rows_of(db: async_sessionmaker[AsyncSession], table) -> list[dict[str, Any]]:
    async with db() as session:
        return [dict(r._mapping) for r in await session.execute(select(table))]


def stock_rejected(order_id: uuid.UUID | None = None) -> StockRejected:
    return StockRejected(
        order_id=order_id or uuid.uuid4(),
        lines=[
            RejectedLine(line_no=1, sku="SKU-A", qty=3, reason="insufficient", available=1),
            RejectedLine(line_no=2, sku="SKU-B", qty=1, reason="unknown_sku"),
        ],
        rejected_at=datetime.now(UTC),
    )


async def dispatch(deliver, event: Event, **kwargs) -> list[Any]:
    return await deliver(event, **kwargs)


def test_consumes_every_topic_and_every_known_event_type() -> None:
    [spec] = consumer_specs()
    assert spec.group_id == GROUP_ID == "notifier"
    assert sorted(spec.topics) == sorted(t.value for t in Topic)
    assert set(spec.handlers) == {m.event_type for m in REGISTRY.models()}


async def test_an_event_is_recorded_once(db, deliver, read_outbox) -> None:
    event = OrderConfirmed(order_id=uuid.uuid4(), channel="shopee", confirmed_at=datetime.now(UTC))
    envelope = make_envelope(event, producer="order-svc", correlation_id="corr-7")

    assert await dispatch(deliver, event, envelope=envelope) == []
    assert await dispatch(deliver, event, envelope=envelope) == []  # redelivered
    # Another consumer group in the same database: the event table's key still dedupes.
    await dispatch(deliver, event, envelope=envelope, group_id="notifier-replay")

    [row] = await rows_of(db, events)
    assert row["event_id"] == envelope.event_id
    assert row["event_type"] == "OrderConfirmed"
    assert row["key"] == str(event.order_id)
    assert row["producer"] == "order-svc"
    assert row["correlation_id"] == "corr-7"
    assert row["occurred_at"] == envelope.occurred_at
    assert row["received_at"] is not None
    assert row["payload"] == envelope.payload
    assert await read_outbox() == []


async def test_payload_with_decimals_is_stored_as_json(db, deliver) -> None:
    event = OrderPaid(
        order_id=uuid.uuid4(),
        channel="lazada",
        lines=[OrderLine(line_no=1, sku="S", qty=2, unit_price=Decimal("10.50"))],
        currency="THB",
        total=Decimal("21.00"),
        paid_at=datetime.now(UTC),
    )
    await dispatch(deliver, event)
    [row] = await rows_of(db, events)
    assert row["payload"]["total"] == "21.00"


async def test_stock_rejected_raises_an_order_exception_alert(db, deliver, read_outbox) -> None:
    event = stock_rejected()
    envelope = make_envelope(event, producer="inventory-svc", correlation_id="corr-9")

    emitted = await dispatch(deliver, event, envelope=envelope)

    [alert_env] = emitted
    alert = AlertRaised.model_validate(alert_env.payload)
    assert alert.alert_type == "order_exception"
    assert alert.severity == "warning"
    assert alert.subject == str(event.order_id)
    assert alert.message == (
        "stock rejected: line 1 SKU-A x3: insufficient (available 1); line 2 SKU-B x1: unknown_sku"
    )
    assert alert.details["order_id"] == str(event.order_id)
    assert alert.details["reasons"] == ["insufficient", "unknown_sku"]
    assert [ln["sku"] for ln in alert.details["lines"]] == ["SKU-A", "SKU-B"]
    assert alert.details["source_event_id"] == str(envelope.event_id)

    [stored] = await rows_of(db, alerts)
    assert stored["id"] == alert.alert_id
    assert stored["state"] == "open"
    assert stored["source"] == "notifier"
    assert (stored["alert_type"], stored["severity"]) == ("order_exception", "warning")
    assert stored["subject"] == alert.subject
    assert stored["message"] == alert.message
    assert stored["details"] == alert.details
    assert stored["raised_at"] == alert.raised_at

    [row] = await read_outbox()
    assert row["event_type"] == "AlertRaised"
    assert row["topic"] == Topic.ALERTS.value
    assert row["key"] == str(event.order_id)
    assert row["envelope"].correlation_id == "corr-9"
    assert row["envelope"].causation_id == str(envelope.event_id)
    assert row["envelope"].producer == "notifier"

    assert [r["event_type"] for r in await rows_of(db, events)] == ["StockRejected"]


async def test_redelivered_stock_rejection_raises_no_second_alert(db, deliver, read_outbox):
    event = stock_rejected()
    envelope = make_envelope(event, producer="inventory-svc")
    await dispatch(deliver, event, envelope=envelope)
    assert await dispatch(deliver, event, envelope=envelope) == []
    assert len(await rows_of(db, alerts)) == 1
    assert len(await read_outbox()) == 1


async def test_own_alert_coming_back_is_recorded_but_not_duplicated(db, deliver) -> None:
    [alert_env] = await dispatch(deliver, stock_rejected())
    alert = AlertRaised.model_validate(alert_env.payload)

    assert await dispatch(deliver, alert, envelope=alert_env) == []

    assert len(await rows_of(db, alerts)) == 1
    assert sorted(r["event_type"] for r in await rows_of(db, events)) == [
        "AlertRaised",
        "StockRejected",
    ]


async def test_alert_raised_by_another_service_is_stored(db, deliver, read_outbox) -> None:
    alert = AlertRaised(
        alert_id=uuid.uuid4(),
        alert_type="low_stock",
        severity="critical",
        subject="SKU-A",
        message="SKU-A below safety stock",
        details={"available": 2},
        raised_at=datetime.now(UTC),
    )
    await dispatch(deliver, alert, envelope=make_envelope(alert, producer="inventory-svc"))

    [stored] = await rows_of(db, alerts)
    assert (stored["source"], stored["severity"], stored["details"]) == (
        "inventory-svc",
        "critical",
        {"available": 2},
    )
    assert await read_outbox() == []
