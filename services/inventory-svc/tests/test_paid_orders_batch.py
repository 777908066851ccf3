"""The set-based batch reservation decides exactly as the one-order path, on a real database.

The same sequence of paid orders (plain, multi-line, pinned to a warehouse, short of
stock, an unknown SKU, a channel over its cap, a SKU capped per customer, a SKU crossing
its safety stock that pauses a channel, the same order paid twice) is applied once event
by event through ``ReservationHandler.on_order_paid`` and once as one batch through the
batch handler; the answers (in order), the stock rows, the reservations, the channel
counters, the ledger and the sales lines must be the same, and so must the causation of
every answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from inventory_svc.adapters.stock_repository import Change, StockRepository
from inventory_svc.domain.policy import ChannelCap
from inventory_svc.handlers import ReservationHandler
from inventory_svc.inventory import Inventory
from inventory_svc.service_layer.paid_orders import make_reserve_paid_orders
from oms_contracts import make_envelope
from oms_contracts.events import OrderConfirmed, OrderLine, OrderPaid
from oms_servicekit.testing import MigratedDatabase

TTL = timedelta(hours=1)
RECEIPT = Change(kind="receipt", reason="test stock", operator="test")
PAID_AT = datetime(2026, 11, 11, 0, 5, tzinfo=UTC)


def paid(
    order_id: uuid.UUID,
    channel: str,
    *lines: tuple[str, int],
    warehouse: str | None = None,
    buyer: str | None = None,
) -> OrderPaid:
    return OrderPaid(
        order_id=order_id,
        channel=channel,
        lines=[
            OrderLine(line_no=n, sku=sku, qty=qty, unit_price=Decimal("10"))
            for n, (sku, qty) in enumerate(lines, start=1)
        ],
        currency="CNY",
        total=Decimal(10) * sum(qty for _, qty in lines),
        paid_at=PAID_AT,
        warehouse=warehouse,
        buyer=buyer,
    )


def sequence() -> list[OrderPaid]:
    ids = [uuid.UUID(int=i + 1) for i in range(40)]
    events = [
        paid(ids[0], "web", ("S1", 2)),
        paid(ids[1], "web", ("S1", 1), ("S2", 1)),
        paid(ids[2], "app", ("S2", 5)),  # short: S2 has 3 in all
        paid(ids[3], "web", ("NOPE", 1)),  # unknown SKU
        paid(ids[4], "web", ("S1", 1), warehouse="WH-B"),  # pinned
        paid(ids[0], "web", ("S1", 2)),  # paid again: answered the same
        paid(ids[5], "app", ("S4", 1), buyer="b-1"),  # capped per customer
        paid(ids[6], "app", ("S4", 1), buyer="b-1"),  # over the buyer's cap
        paid(ids[7], "web", ("S1", 1), ("S4", 1), buyer="b-2"),
    ]
    # live may take 60 % of S3's 10 units: six of these ten one-unit orders pass.
    events += [paid(ids[8 + i], "live", ("S3", 1)) for i in range(10)]
    # S5 has 6 units, safety stock 3 with live paused while low: the crossing order and
    # the web orders pass, the live orders after the crossing are refused (paused).
    events += [paid(ids[20 + i], "live" if i % 2 else "web", ("S5", 1)) for i in range(8)]
    events += [paid(ids[30], "web", ("S1", 1), ("S3", 1), ("S5", 1))]
    return events


async def seed(db: MigratedDatabase) -> None:
    async with db.uow() as uow:
        repo = StockRepository(uow.session)
        for code in ("WH-A", "WH-B"):
            await repo.add_warehouse(
                {"code": code, "name": code, "region": "CN", "latitude": 1.0, "longitude": 1.0}
            )
        inventory = Inventory(uow)
        for sku, stock in {
            "S1": {"WH-A": 5, "WH-B": 3},
            "S2": {"WH-A": 2, "WH-B": 1},
            "S3": {"WH-A": 10},
            "S4": {"WH-A": 5},
            "S5": {"WH-A": 4, "WH-B": 2},
        }.items():
            await repo.add_sku({"sku": sku, "name": sku})
            for warehouse, qty in stock.items():
                await inventory.receive(sku, warehouse, qty, RECEIPT)
        policy = {"safety_stock": 0, "channel_caps": {}, "pause_channels": [], "abc_override": None}
        await inventory.put_policy(
            "S3", policy | {"channel_caps": {"live": ChannelCap(percent=Decimal(60))}}
        )
        await inventory.put_policy("S4", policy | {"max_per_customer": 1})
        await inventory.put_policy("S5", policy | {"safety_stock": 3, "pause_channels": ["live"]})
        await uow.commit()


async def state(db: MigratedDatabase) -> dict[str, Any]:
    queries = {
        "stock": "SELECT sku, warehouse, on_hand, reserved FROM stock ORDER BY 1, 2",
        "reservations": "SELECT order_id, line_no, sku, warehouse, channel, qty, state,"
        " unit_price, buyer FROM reservations ORDER BY 1, 2",
        "counters": "SELECT sku, channel, reserved, shipped, cap_units, paused"
        " FROM channel_allocations ORDER BY 1, 2",
        "ledger": "SELECT sku, warehouse, kind, order_id, delta_on_hand, delta_reserved,"
        " on_hand_after, reserved_after FROM ledger WHERE kind = 'reservation' ORDER BY id",
        "sales": "SELECT order_id, line_no, sku, warehouse, channel, day, qty FROM sales_lines"
        " ORDER BY 1, 2",
        "buyers": "SELECT sku, buyer, qty FROM buyer_purchases ORDER BY 1, 2",
        "policies": "SELECT sku, low FROM sku_policies ORDER BY 1",
    }
    async with db.engine.connect() as conn:
        return {
            name: [tuple(row) for row in await conn.execute(text(sql))]
            for name, sql in queries.items()
        }


def answers(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The events emitted by reserving, without their ids and times (stock levels are
    snapshots: the last one per row counts)."""
    out = []
    for row in rows:
        envelope = row["envelope"]
        payload = {
            k: v
            for k, v in envelope.payload.items()
            if k not in {"reserved_at", "rejected_at", "changed_at", "raised_at", "paused_at"}
        }
        if envelope.event_type in {"StockReserved", "StockRejected"}:
            out.append((envelope.event_type, str(envelope.causation_id), payload))
    return out


def last_levels(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    levels: dict[tuple[str, str], Any] = {}
    for row in rows:
        if row["event_type"] == "StockLevelChanged":
            p = row["envelope"].payload
            levels[(p["sku"], p["warehouse"])] = (p["on_hand"], p["reserved"])
    return levels


def other_events(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Alarms and pauses: which happened (the order among them is the one-order path's)."""
    kinds = {"StockLow", "ChannelSalesPaused", "ChannelSalesResumed"}
    return sorted(
        (row["event_type"], row["envelope"].payload.get("sku", ""))
        for row in rows
        if row["event_type"] in kinds
    )


async def test_a_batch_decides_exactly_as_one_order_at_a_time(db: MigratedDatabase) -> None:
    envelopes = [make_envelope(e, producer="order-svc") for e in sequence()]

    await seed(db)
    before = len(await db.outbox_rows())
    handler = ReservationHandler(TTL)
    for envelope, event in zip(envelopes, sequence(), strict=True):
        async with db.uow() as uow:
            uow.caused_by(envelope)
            await handler.on_order_paid(uow, envelope, event)
            await uow.commit()
    one_by_one = await state(db)
    one_rows = (await db.outbox_rows())[before:]

    await db.truncate()
    await seed(db)
    before = len(await db.outbox_rows())
    batch = make_reserve_paid_orders(TTL)
    async with db.uow() as uow:
        await batch(uow, [(e, e_ev) for e, e_ev in zip(envelopes, sequence(), strict=True)])
        await uow.commit()
    batched = await state(db)
    batch_rows = (await db.outbox_rows())[before:]

    for table in one_by_one:
        assert batched[table] == one_by_one[table], table
    assert answers(batch_rows) == answers(one_rows)
    assert last_levels(batch_rows) == last_levels(one_rows)
    assert other_events(batch_rows) == other_events(one_rows)
    # The sequence exercises what it claims to.
    reasons = {
        line["reason"]
        for kind, _, payload in answers(one_rows)
        if kind == "StockRejected"
        for line in payload["lines"]
    }
    assert reasons == {
        "insufficient",
        "unknown_sku",
        "channel_cap",
        "customer_limit",
        "channel_paused",
    }
    assert ("StockLow", "S5") in other_events(one_rows)


async def test_a_batch_writes_each_table_once(db: MigratedDatabase) -> None:
    """Hundreds of plain orders cost a handful of statements, not a dozen each."""
    await seed(db)
    async with db.uow() as uow:
        await StockRepository(uow.session).receive("S1", "WH-A", 1000, RECEIPT)
        await uow.commit()
    events = [paid(uuid.uuid4(), "web", ("S1", 1)) for _ in range(200)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    from sqlalchemy import event as sa_event

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.uow() as uow:
            await make_reserve_paid_orders(TTL)(
                uow, [(make_envelope(e, producer="order-svc"), e) for e in events]
            )
            await uow.commit()
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) < 25, statements
    async with db.engine.connect() as conn:
        held = await conn.scalar(text("SELECT count(*) FROM reservations"))
    assert held == 200


async def test_a_run_of_confirmations_holds_those_orders_until_shipped(
    db: MigratedDatabase,
) -> None:
    """Confirmed orders' holds stop expiring, in one statement for the run; an order not
    confirmed keeps its expiry (the sweeper may still release it)."""
    await seed(db)
    ids = [uuid.UUID(int=900 + i) for i in range(3)]
    async with db.uow() as uow:
        await make_reserve_paid_orders(TTL)(
            uow,
            [
                (make_envelope(e, producer="order-svc"), e)
                for e in (paid(i, "web", ("S1", 1)) for i in ids)
            ],
        )
        await uow.commit()
    confirmed = [
        OrderConfirmed(order_id=i, channel="web", confirmed_at=PAID_AT)
        for i in (ids[0], ids[2], ids[2])
    ]
    handler = ReservationHandler(TTL)
    async with db.uow() as uow:
        await handler.on_orders_confirmed(
            uow, [(make_envelope(e, producer="order-svc"), e) for e in confirmed]
        )
        await uow.commit()
    async with db.engine.connect() as conn:
        expiring = dict(
            (
                await conn.execute(
                    text("SELECT order_id, expires_at IS NOT NULL FROM reservations")
                )
            ).all()
        )
    assert expiring == {ids[0]: False, ids[1]: True, ids[2]: False}
