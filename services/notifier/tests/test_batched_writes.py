"""The event log and the board are written once per transaction, not once per event.

The consumer runner applies a chunk of messages in one unit of work, calling the
handler per message. These tests do the same (no Kafka) and check that the writes are
batched (a constant number of statements whatever the number of events) and that
batching changes nothing: the tables end exactly as when each event has its own
transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.board_tables import (
    board_channel_pauses,
    board_exceptions,
    board_low_stock,
    board_orders,
    board_stock_levels,
    board_throughput,
)
from notifier.adapters.tables import alerts, events
from notifier.handlers import INBOX, SERVICE, event_handlers
from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import (
    Address,
    ChannelSalesPaused,
    ChannelSalesResumed,
    CreditCheckDegraded,
    CustomerIdentity,
    CustomerResolved,
    OrderCreated,
    OrderExceptionRaised,
    OrderExceptionResolved,
    OrderLine,
    OrderRouted,
    OrderStatusChanged,
    RejectedLine,
    RoutedShipment,
    SlaAtRisk,
    SlaBreached,
    StockLevelChanged,
    StockLow,
    StockRejected,
)
from oms_messaging import UnitOfWork
from oms_servicekit.testing import MigratedDatabase, recorded_statements

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
HANDLERS = event_handlers()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def created(order_id: uuid.UUID, when: datetime = T0) -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        channel="web",
        channel_order_id=f"REF-{order_id.hex[:6]}",
        customer=CustomerIdentity(platform_user_id="u1", name="Li Lei"),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=2, unit_price=Decimal("9.50"))],
        currency="CNY",
        total=Decimal("19.00"),
        shipping_address=Address(region="CN-SH", city="Shanghai"),
        created_at=when,
    )


def moved(
    order_id: uuid.UUID,
    to_state: str,
    when: datetime,
    from_state: str | None = None,
    reason: str | None = None,
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel="web",
        from_state=from_state,
        to_state=to_state,
        actor="system",
        reason=reason,
        changed_at=when,
    )


def sla(order_id: uuid.UUID, raised: datetime, *, breached: bool = False) -> SlaAtRisk:
    kind = SlaBreached if breached else SlaAtRisk
    return kind(
        order_id=order_id,
        channel="web",
        order_class="standard",
        stage="ship",
        deadline=at(600),
        raised_at=raised,
    )


def level(available: int, when: datetime) -> StockLevelChanged:
    return StockLevelChanged(
        sku="SKU-L",
        warehouse="WH-SH",
        on_hand=available,
        reserved=0,
        available=available,
        changed_at=when,
    )


def story(a: uuid.UUID, b: uuid.UUID, c: uuid.UUID) -> list[Event]:
    """Out-of-order, repeated and exception-laden events of three orders and one SKU."""
    exception: dict[str, Any] = {"order_id": c, "channel": "web", "cause": "invalid_address"}
    exception_id = uuid.uuid4()
    return [
        moved(a, "paid", at(2), "received"),  # before the order itself
        created(a),
        created(a),  # announced again under a new event id: counted once
        moved(a, "confirmed", at(5), "reserved"),
        moved(a, "reserved", at(3), "paid"),  # late and older: no effect
        OrderRouted(
            order_id=a,
            channel="web",
            shipments=[RoutedShipment(warehouse="WH-SH", line_nos=[1], score=0.9)],
            split=False,
            routed_at=at(6),
        ),
        CustomerResolved(
            customer_id=uuid.uuid4(),
            order_id=a,
            channel="web",
            platform_user_id="u1",
            new_customer=True,
            resolved_at=at(1),
        ),
        CreditCheckDegraded(order_id=a, channel="web", reason="timeout", degraded_at=at(1)),
        sla(a, at(10)),
        sla(a, at(20), breached=True),
        sla(a, at(15)),  # an older warning arriving late does not undo the breach
        created(b, at(70)),
        moved(b, "exception", at(3), "paid", "stock_rejected (SKU-1: insufficient)"),
        OrderExceptionRaised(
            exception_id=uuid.uuid4(),
            order_id=b,
            channel="web",
            cause="stock_rejected",
            raised_at=at(3.005),
        ),
        moved(b, "paid", at(9), "exception", "retry"),
        moved(b, "exception", at(4), "paid", "credit_degraded (late)"),  # stale: no exception
        OrderExceptionResolved(
            **exception, exception_id=exception_id, action="retry", actor="ops", resolved_at=at(120)
        ),
        OrderExceptionRaised(**exception, exception_id=exception_id, raised_at=at(0)),
        OrderExceptionRaised(**exception, exception_id=exception_id, raised_at=at(300)),
        StockLow(sku="SKU-L", available=2, safety_stock=5, raised_at=at(1)),
        StockLow(sku="SKU-L", available=1, safety_stock=5, raised_at=at(0)),
        level(3, at(10)),
        level(9, at(5)),
        level(4, at(10)),  # the same time: the last one told wins
        ChannelSalesPaused(sku="SKU-L", channel="live", reason="low", paused_at=at(1)),
        ChannelSalesResumed(sku="SKU-L", channel="live", reason="old", resumed_at=at(0)),
        StockRejected(
            order_id=b,
            lines=[RejectedLine(line_no=1, sku="SKU-1", qty=3, reason="insufficient")],
            rejected_at=at(3),
        ),
    ]


async def apply_together(
    db: async_sessionmaker[AsyncSession], envelopes: list[tuple[Envelope, Event]]
) -> None:
    """Apply the events in one unit of work as the runner does: all admitted at once,
    then handled message by message."""
    async with UnitOfWork(db, producer=SERVICE) as uow:
        fresh = await INBOX.admit(uow, SERVICE, [envelope for envelope, _ in envelopes])
        for envelope, event in envelopes:
            if envelope.event_id in fresh:
                fresh.discard(envelope.event_id)
                uow.caused_by(envelope)
                await HANDLERS[event.event_type](uow, envelope, event)
        await uow.commit()


def enveloped(events_: list[Event]) -> list[tuple[Envelope, Event]]:
    return [(make_envelope(e, producer="test"), e) for e in events_]


async def snapshot(db: async_sessionmaker[AsyncSession]) -> dict[str, list[dict[str, Any]]]:
    """Every projected table (minus bookkeeping columns), in a stable order."""
    tables = {
        "orders": board_orders,
        "exceptions": board_exceptions,
        "throughput": board_throughput,
        "low_stock": board_low_stock,
        "stock_levels": board_stock_levels,
        "pauses": board_channel_pauses,
        "events": events,
    }
    skip = {"updated_at", "seq", "received_at"}
    result: dict[str, list[dict[str, Any]]] = {}
    async with db() as session:
        for name, table in tables.items():
            rows = [
                {k: v for k, v in r._mapping.items() if k not in skip}
                for r in await session.execute(select(table))
            ]
            result[name] = sorted(rows, key=repr)
    return result


def touching(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if f" {table} " in f" {s} ".replace("\n", " ")]


async def test_one_transaction_writes_the_event_log_and_the_board_in_a_few_statements(
    db, engine
) -> None:
    orders = [uuid.uuid4() for _ in range(8)]
    batch: list[Event] = []
    for order_id in orders:
        batch.append(created(order_id))
        for step, state in enumerate(("received", "paid", "reserved", "confirmed"), start=1):
            batch.append(moved(order_id, state, at(step)))
    envelopes = enveloped(batch)

    with recorded_statements(engine) as seen:
        await apply_together(db, envelopes)

    assert len(touching(seen, "events")) == 1  # one per event before
    assert touching(seen, "inbox") == []  # the event log is the inbox
    assert len(touching(seen, "board_orders")) == 2  # lock and read, then write
    assert len(touching(seen, "board_throughput")) == 1
    rows = await snapshot(db)
    assert len(rows["events"]) == len(batch)
    assert {r["order_id"]: r["state"] for r in rows["orders"]} == dict.fromkeys(orders, "confirmed")
    assert [r["orders"] for r in rows["throughput"]] == [len(orders)]


async def test_batching_ends_where_one_transaction_per_event_ends(
    db, deliver, database: MigratedDatabase
) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    envelopes = enveloped(story(a, b, c))
    for envelope, event in envelopes:
        await deliver(event, envelope=envelope)
    one_by_one = await snapshot(db)
    async with db() as session:
        alerts_one_by_one = len((await session.execute(select(alerts))).all())

    await database.truncate()
    await apply_together(db, envelopes)

    assert await snapshot(db) == one_by_one
    async with db() as session:
        assert len((await session.execute(select(alerts))).all()) == alerts_one_by_one
    # Batching kept the exceptions the story opens and closes.
    assert {(r["order_id"], r["cause"], r["resolved_at"]) for r in one_by_one["exceptions"]} == {
        (b, "stock_rejected", at(9)),
        (c, "invalid_address", None),
    }


async def test_a_redelivered_chunk_changes_nothing(db) -> None:
    envelopes = enveloped(story(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()))
    await apply_together(db, envelopes)
    before = await snapshot(db)
    await apply_together(db, envelopes)
    assert await snapshot(db) == before


async def test_a_rolled_back_chunk_leaves_nothing_and_its_replay_writes_everything(db) -> None:
    order_id = uuid.uuid4()
    envelopes = enveloped([created(order_id), moved(order_id, "paid", at(1))])
    with pytest.raises(RuntimeError):
        async with UnitOfWork(db, producer=SERVICE) as uow:
            for envelope, event in envelopes:
                await INBOX.admit(uow, SERVICE, [envelope])
                await HANDLERS[event.event_type](uow, envelope, event)
            raise RuntimeError("handler of the next message failed")
    assert (await snapshot(db))["events"] == []

    await apply_together(db, envelopes)
    rows = await snapshot(db)
    assert len(rows["events"]) == 2
    assert [r["state"] for r in rows["orders"]] == ["paid"]


async def test_a_unit_of_work_rolled_back_and_reused_writes_only_its_new_transaction(db) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    [(env_1, ev_1)], [(env_2, ev_2)] = enveloped([created(first)]), enveloped([created(second)])
    async with UnitOfWork(db, producer=SERVICE) as uow:
        await INBOX.admit(uow, SERVICE, [env_1])
        await HANDLERS[ev_1.event_type](uow, env_1, ev_1)
        await uow.rollback()
        await INBOX.admit(uow, SERVICE, [env_2])
        await HANDLERS[ev_2.event_type](uow, env_2, ev_2)
        await uow.commit()
    rows = await snapshot(db)
    assert [r["event_id"] for r in rows["events"]] == [env_2.event_id]
    assert [r["order_id"] for r in rows["orders"]] == [second]
