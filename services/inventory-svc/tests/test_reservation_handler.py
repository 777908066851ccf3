"""OrderPaid -> stock reservation, on a real PostgreSQL database (events
through the production consumers on a real broker).

What must hold: a paid order reserves all its lines or none; a rejection says why per
line; a redelivered event changes nothing; concurrent orders never oversell, whatever
the interleaving; and the ledger's deltas always sum to the stock row.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from inventory_svc.adapters.stock_repository import Change, StockRepository
from inventory_svc.adapters.tables import ledger, reservations, stock
from inventory_svc.bootstrap import SERVICE
from inventory_svc.domain.allocation import Allocation
from oms_contracts import Envelope, make_envelope
from oms_contracts.events import (
    OrderLine,
    OrderPaid,
    RejectedLine,
    ReservedLine,
    StockRejected,
    StockReserved,
)
from oms_contracts.topics import Topic
from oms_servicekit.testing import MigratedDatabase

#: The consumer group the handler runs in (its inbox name).
RECEIPT = Change(kind="receipt", reason="test stock", operator="test")


ANSWERS = {"StockReserved", "StockRejected"}


async def reserve(db: MigratedDatabase, event: OrderPaid, **kwargs: Any) -> list[Envelope]:
    """The answers (StockReserved/StockRejected) the handler emitted for ``event``."""
    emitted = await db.deliver(event, **kwargs)
    return [e for e in emitted if e.event_type in ANSWERS]


async def answer_rows(db: MigratedDatabase) -> list[dict[str, Any]]:
    """The outbox rows of reservation answers (stock level events left out)."""
    return [r for r in await db.outbox_rows() if r["event_type"] in ANSWERS]


async def add_stock(db: MigratedDatabase, sku: str, on_hand: int, warehouse: str = "WH-1") -> None:
    async with db.uow() as uow:
        repo = StockRepository(uow.session)
        await repo.add_warehouse(
            {
                "code": warehouse,
                "name": warehouse,
                "region": "Bangkok",
                "latitude": 13.7,
                "longitude": 100.5,
            }
        )
        await repo.add_sku({"sku": sku, "name": sku})
        await repo.receive(sku, warehouse, on_hand, RECEIPT)
        await uow.commit()


def order_paid(*lines: tuple[str, int], warehouse: str | None = None) -> OrderPaid:
    order_lines = [
        OrderLine(line_no=n, sku=sku, qty=qty, unit_price=Decimal("10"))
        for n, (sku, qty) in enumerate(lines, start=1)
    ]
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel="shopee",
        lines=order_lines,
        currency="THB",
        total=sum((line.unit_price * line.qty for line in order_lines), Decimal(0)),
        paid_at=datetime.now(UTC),
        warehouse=warehouse,
    )


async def stock_levels(db: MigratedDatabase) -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, warehouse) -> (on_hand, reserved)."""
    async with db.session_factory() as session:
        rows = await session.execute(select(stock))
    return {(r.sku, r.warehouse): (r.on_hand, r.reserved) for r in rows}


async def reservation_rows(db: MigratedDatabase) -> list[dict[str, Any]]:
    async with db.session_factory() as session:
        rows = await session.execute(
            select(reservations).order_by(reservations.c.order_id, reservations.c.line_no)
        )
    return [dict(r._mapping) for r in rows]


async def ledger_sums(db: MigratedDatabase) -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, warehouse) -> (SUM(delta_on_hand), SUM(delta_reserved)) over the ledger."""
    async with db.session_factory() as session:
        rows = await session.execute(
            select(
                ledger.c.sku,
                ledger.c.warehouse,
                func.sum(ledger.c.delta_on_hand),
                func.sum(ledger.c.delta_reserved),
            ).group_by(ledger.c.sku, ledger.c.warehouse)
        )
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


async def assert_ledger_balances(db: MigratedDatabase) -> None:
    assert await ledger_sums(db) == await stock_levels(db)


def reserved_of(envelope: Envelope) -> StockReserved:
    assert envelope.event_type == "StockReserved"
    return StockReserved.model_validate(envelope.payload)


def rejected_of(envelope: Envelope) -> StockRejected:
    assert envelope.event_type == "StockRejected"
    return StockRejected.model_validate(envelope.payload)


async def test_paid_order_reserves_and_announces_it(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 10)
    event = order_paid(("SKU-A", 3))

    [emitted] = await reserve(db, event)

    assert reserved_of(emitted).lines == [
        ReservedLine(line_no=1, sku="SKU-A", qty=3, warehouse="WH-1")
    ]
    [row] = await answer_rows(db)
    assert (row["topic"], row["key"], row["event_type"]) == (
        Topic.RESERVATIONS.value,
        str(event.order_id),
        "StockReserved",
    )
    assert row["envelope"].event_id == emitted.event_id
    assert row["envelope"].producer == SERVICE
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (10, 3)}
    [reservation] = await reservation_rows(db)
    assert (reservation["order_id"], reservation["qty"], reservation["state"]) == (
        event.order_id,
        3,
        "reserved",
    )
    await assert_ledger_balances(db)


async def test_same_event_twice_changes_nothing(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 10)
    event = order_paid(("SKU-A", 3))
    envelope = make_envelope(event, producer="order-svc")

    assert len(await reserve(db, event, envelope=envelope)) == 1
    before = (await stock_levels(db), await reservation_rows(db), await ledger_sums(db))

    assert await reserve(db, event, envelope=envelope) == []  # redelivered

    assert (await stock_levels(db), await reservation_rows(db), await ledger_sums(db)) == before
    assert len(await answer_rows(db)) == 1


async def test_repeated_request_for_a_reserved_order_gets_the_same_answer(
    db: MigratedDatabase,
) -> None:
    await add_stock(db, "SKU-A", 10)
    event = order_paid(("SKU-A", 3))
    [first] = await reserve(db, event)

    [again] = await reserve(db, event)  # a new OrderPaid envelope for the same order

    assert reserved_of(again).lines == reserved_of(first).lines
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (10, 3)}
    assert len(await reservation_rows(db)) == 1


async def test_more_than_available_is_rejected_and_changes_no_stock(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 2)
    event = order_paid(("SKU-A", 5))

    [emitted] = await reserve(db, event)

    assert rejected_of(emitted).lines == [
        RejectedLine(line_no=1, sku="SKU-A", qty=5, reason="insufficient", available=2)
    ]
    [row] = await answer_rows(db)
    assert (row["topic"], row["key"]) == (Topic.RESERVATIONS.value, str(event.order_id))
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (2, 0)}
    assert await reservation_rows(db) == []
    await assert_ledger_balances(db)


async def test_unknown_sku_is_rejected(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 10)

    [emitted] = await reserve(db, order_paid(("SKU-A", 1), ("NO-SUCH-SKU", 1)))

    assert rejected_of(emitted).lines == [
        RejectedLine(line_no=2, sku="NO-SUCH-SKU", qty=1, reason="unknown_sku", available=None)
    ]
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (10, 0)}
    assert await reservation_rows(db) == []


async def test_multi_line_order_is_reserved_all_or_none(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 10)
    await add_stock(db, "SKU-B", 1)

    [emitted] = await reserve(db, order_paid(("SKU-A", 2), ("SKU-B", 5)))

    assert rejected_of(emitted).lines == [
        RejectedLine(line_no=2, sku="SKU-B", qty=5, reason="insufficient", available=1)
    ]
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (10, 0), ("SKU-B", "WH-1"): (1, 0)}
    assert await reservation_rows(db) == []
    await assert_ledger_balances(db)


async def test_line_lost_to_a_concurrent_order_releases_the_lines_already_reserved(
    db: MigratedDatabase,
) -> None:
    """The plan saw enough of SKU-B, but another order takes it while this one reserves.

    SKU-A (locked first) is reserved, SKU-B's guarded update waits on the other order's
    lock and then finds nothing left: SKU-A's reservation must be undone with it.
    """
    await add_stock(db, "SKU-A", 10)
    await add_stock(db, "SKU-B", 1)
    async with db.uow() as other:
        taken = await StockRepository(other.session).try_reserve(
            Allocation(line_no=1, sku="SKU-B", warehouse="WH-1", qty=1), RECEIPT
        )
        assert taken is not None
        applying = asyncio.create_task(reserve(db, order_paid(("SKU-A", 2), ("SKU-B", 1))))
        await db.wait_for_lock_waiter()
        await other.commit()
    [emitted] = await applying

    [line] = rejected_of(emitted).lines
    assert (line.sku, line.reason, line.available) == ("SKU-B", "insufficient", 0)
    assert await stock_levels(db) == {("SKU-A", "WH-1"): (10, 0), ("SKU-B", "WH-1"): (1, 1)}
    assert await reservation_rows(db) == []
    await assert_ledger_balances(db)


async def test_concurrent_orders_never_oversell(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-HOT", 15)
    events = [order_paid(("SKU-HOT", 1)) for _ in range(40)]

    # One burst to two instances of the consumer: the partitions are split between them,
    # so their transactions contend for the same stock row.
    emitted = [e for e in await db.deliver_many(events, replicas=2) if e.event_type in ANSWERS]
    assert len(emitted) == 40
    reserved = [e for e in emitted if e.event_type == "StockReserved"]
    rejected = [rejected_of(e) for e in emitted if e.event_type == "StockRejected"]
    assert (len(reserved), len(rejected)) == (15, 25)
    assert all(
        (line.reason, line.available) == ("insufficient", 0)
        for rejection in rejected
        for line in rejection.lines
    )
    assert await stock_levels(db) == {("SKU-HOT", "WH-1"): (15, 15)}
    assert len(await reservation_rows(db)) == 15
    assert sorted(r["event_type"] for r in await answer_rows(db)) == sorted(
        e.event_type for e in emitted
    )
    await assert_ledger_balances(db)


async def test_database_refuses_to_reserve_more_than_on_hand(db: MigratedDatabase) -> None:
    await add_stock(db, "SKU-A", 3)

    async with db.session_factory() as session:
        with pytest.raises(IntegrityError, match="stock_never_oversold"):
            await session.execute(
                text("UPDATE stock SET reserved = on_hand + 1 WHERE sku = 'SKU-A'")
            )
        await session.rollback()

    assert await stock_levels(db) == {("SKU-A", "WH-1"): (3, 0)}
