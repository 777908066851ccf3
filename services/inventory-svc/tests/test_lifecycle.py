"""Caps, pauses, release, shipment, expiry, adjustments and the ledger, on a real
PostgreSQL database, through the same code the consumers and routes run (events reach
the production consumers through a real broker)."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql

from inventory_svc.adapters.stock_repository import Change, expired_holds_query
from inventory_svc.adapters.tables import channel_allocations, ledger, reservations, stock
from inventory_svc.domain.policy import ChannelCap
from inventory_svc.handlers import consumer_specs, purge_ledger, sweep_expired
from inventory_svc.inventory import Inventory, Refused
from oms_contracts import Envelope, make_envelope
from oms_contracts.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderShipped,
    ShipmentLine,
    StockRejected,
)
from oms_servicekit.testing import MigratedDatabase


async def setup_sku(db: MigratedDatabase, sku: str, stock_: dict[str, int]) -> None:
    async with db.uow() as uow:
        inv = Inventory(uow)
        for wh in stock_:
            await inv.repo.add_warehouse(
                {"code": wh, "name": wh, "region": "CN-SH", "latitude": 31.2, "longitude": 121.5}
            )
        await inv.repo.add_sku({"sku": sku, "name": sku})
        for wh, qty in stock_.items():
            await inv.receive(sku, wh, qty, Change("receipt", "test", "tester"))
        await uow.commit()


async def set_policy(db: MigratedDatabase, sku: str, **values: Any) -> None:
    async with db.uow() as uow:
        await Inventory(uow).put_policy(
            sku,
            {
                "safety_stock": values.get("safety_stock", 0),
                "channel_caps": values.get("channel_caps", {}),
                "pause_channels": values.get("pause_channels", []),
                "abc_override": values.get("abc_override"),
            },
        )
        await uow.commit()


def paid(sku: str, qty: int = 1, channel: str = "live", **kw: Any) -> OrderPaid:
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel=channel,
        lines=[OrderLine(line_no=1, sku=sku, qty=qty, unit_price=Decimal("10"), **kw)],
        currency="CNY",
        total=Decimal(10 * qty),
        paid_at=datetime.now(UTC),
    )


async def apply(db: MigratedDatabase, event: Any, **kw: Any) -> list[Envelope]:
    return await db.deliver(event, **kw)


def cancelled(order: OrderPaid) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id,
        channel=order.channel,
        reason="buyer asked",
        actor="buyer",
        cancelled_at=datetime.now(UTC),
    )


def types(emitted: list[Envelope]) -> list[str]:
    return [e.event_type for e in emitted]


async def levels(db: MigratedDatabase) -> dict[tuple[str, str], tuple[int, int]]:
    async with db.session_factory() as s:
        rows = await s.execute(select(stock))
    return {(r.sku, r.warehouse): (r.on_hand, r.reserved) for r in rows}


async def ledger_sums(db: MigratedDatabase) -> dict[tuple[str, str], tuple[int, int]]:
    async with db.session_factory() as s:
        rows = await s.execute(
            select(
                ledger.c.sku,
                ledger.c.warehouse,
                func.sum(ledger.c.delta_on_hand),
                func.sum(ledger.c.delta_reserved),
            ).group_by(ledger.c.sku, ledger.c.warehouse)
        )
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


async def usage(db: MigratedDatabase, sku: str) -> dict[str, tuple[int, int, int | None, bool]]:
    async with db.session_factory() as s:
        rows = await s.execute(select(channel_allocations).where(channel_allocations.c.sku == sku))
    return {r.channel: (r.reserved, r.shipped, r.cap_units, r.paused) for r in rows}


async def states(db: MigratedDatabase) -> Counter[str]:
    async with db.session_factory() as s:
        return Counter((await s.execute(select(reservations.c.state))).scalars())


async def test_a_hundred_concurrent_live_orders_with_a_60_percent_cap_take_exactly_30(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "HOT", {"WH-1": 30, "WH-2": 20})
    await set_policy(db, "HOT", channel_caps={"live": ChannelCap(percent=Decimal(60))})

    # One burst to two instances of the consumer, whose transactions contend.
    emitted = await db.deliver_many([paid("HOT") for _ in range(100)], replicas=2)

    answers = [e for e in emitted if e.event_type in ("StockReserved", "StockRejected")]
    assert Counter(types(answers)) == {"StockReserved": 30, "StockRejected": 70}
    reasons = {
        line.reason
        for e in answers
        if e.event_type == "StockRejected"
        for line in StockRejected.model_validate(e.payload).lines
    }
    assert reasons == {"channel_cap"}
    assert (await usage(db, "HOT"))["live"] == (30, 0, 30, False)
    assert sum(r for _, r in (await levels(db)).values()) == 30
    assert await ledger_sums(db) == await levels(db)
    # Another channel still gets the rest of the pool.
    emitted = await apply(db, paid("HOT", 10, "app"))
    assert "StockReserved" in types(emitted)


async def test_an_absolute_cap_and_a_rejection_naming_the_headroom(db: MigratedDatabase) -> None:
    await setup_sku(db, "S", {"WH-1": 100})
    await set_policy(db, "S", channel_caps={"live": ChannelCap(units=5)})
    assert "StockReserved" in types(await apply(db, paid("S", 3)))
    emitted = await apply(db, paid("S", 3))
    [rejected] = [e for e in emitted if e.event_type == "StockRejected"]
    [line] = StockRejected.model_validate(rejected.payload).lines
    assert (line.reason, line.available) == ("channel_cap", 2)


async def test_cancel_releases_once_and_gives_the_channel_its_units_back(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    await set_policy(db, "S", channel_caps={"live": ChannelCap(units=4)})
    order = paid("S", 4)
    await apply(db, order)
    cancel = OrderCancelled(
        order_id=order.order_id,
        channel="live",
        reason="buyer",
        actor="x",
        cancelled_at=datetime.now(UTC),
    )
    first = await apply(db, cancel)
    assert types(first) == ["StockReleased", "StockLevelChanged"]
    assert first[0].payload["reason"] == "cancelled"
    before = (await levels(db), await ledger_sums(db), await usage(db, "S"))
    # The same event again (inbox) and the same cancel with a new event id: no change.
    assert (
        await apply(
            db,
            cancel,
            envelope=first[0] and make_envelope(cancel, producer="x"),
        )
        == []
    )
    assert await apply(db, cancel) == []
    assert (await levels(db), await ledger_sums(db), await usage(db, "S")) == before
    assert before[0] == {("S", "WH-1"): (10, 0)}
    assert before[2]["live"][0] == 0
    assert await states(db) == {"released": 1}


async def test_ship_deducts_once_and_counts_against_the_cap(db: MigratedDatabase) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    await set_policy(db, "S", channel_caps={"live": ChannelCap(percent=Decimal(50))})
    order = paid("S", 3)
    await apply(db, order)
    shipped = OrderShipped(
        order_id=order.order_id,
        channel="live",
        carrier="SF",
        tracking_number="T1",
        lines=[ShipmentLine(line_no=1, sku="S", qty=3, warehouse="WH-1")],
        shipped_at=datetime.now(UTC),
    )
    assert types(await apply(db, shipped)) == ["StockLevelChanged"]
    assert await apply(db, shipped) == []
    cancel = OrderCancelled(
        order_id=order.order_id,
        channel="live",
        reason="late",
        actor="x",
        cancelled_at=datetime.now(UTC),
    )
    assert await apply(db, cancel) == []  # shipped: nothing to release
    assert await levels(db) == {("S", "WH-1"): (7, 0)}
    assert await ledger_sums(db) == await levels(db)
    # The cap base is on hand + shipped (10): 50 % is still 5, of which 3 are used.
    assert (await usage(db, "S"))["live"] == (0, 3, 5, False)
    assert await states(db) == {"shipped": 1}


async def test_the_sweeper_releases_expired_reservations_once(db: MigratedDatabase) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    old, fresh = paid("S", 2), paid("S", 1)
    await apply(db, old)
    await apply(db, fresh)
    async with db.session_factory() as s:
        await s.execute(
            update(reservations)
            .where(reservations.c.order_id == old.order_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await s.commit()

    assert await sweep_expired(db.uow, 100) == 1
    assert await sweep_expired(db.uow, 100) == 0
    assert await levels(db) == {("S", "WH-1"): (10, 1)}
    released = [r for r in await db.outbox_rows() if r["event_type"] == "StockReleased"]
    assert [r["envelope"].payload["reason"] for r in released] == ["expired"]
    assert await ledger_sums(db) == await levels(db)


async def test_safety_stock_low_is_raised_once_and_pauses_then_resumes(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    await set_policy(db, "S", safety_stock=5, pause_channels=["live"])
    await apply(db, paid("S", 4, "app"))  # 6 left: fine
    emitted = await apply(db, paid("S", 2, "app"))  # 4 < 5: low
    assert {"StockLow", "ChannelSalesPaused"} <= set(types(emitted))
    emitted = await apply(db, paid("S", 1, "app"))  # still low
    assert "StockLow" not in types(emitted)
    rejected = await apply(db, paid("S", 1, "live"))
    [answer] = [e for e in rejected if e.event_type == "StockRejected"]
    assert answer.payload["lines"][0]["reason"] == "channel_paused"

    async with db.uow() as uow:
        await Inventory(uow).receive("S", "WH-1", 10, Change("receipt", "restock", "tester"))
        assert "ChannelSalesResumed" in types(uow.emitted)
        await uow.commit()
    assert "StockReserved" in types(await apply(db, paid("S", 1, "live")))


async def test_adjustments_and_transfers_refuse_what_would_break_stock(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "S", {"WH-1": 5, "WH-2": 0})
    await apply(db, paid("S", 3, "app", warehouse="WH-1"))
    change = Change("adjustment", "damaged", "tester")
    async with db.uow() as uow:
        with pytest.raises(Refused) as refused:
            await Inventory(uow).adjust("S", "WH-1", -3, change)  # 5 - 3 < 3 reserved
        assert refused.value.status == 409
        with pytest.raises(Refused):
            await Inventory(uow).transfer("S", "WH-1", "WH-2", 3, Change("transfer", "t", "x"))
        with pytest.raises(Refused):
            await Inventory(uow).adjust("NOPE", "WH-1", 1, change)
    async with db.uow() as uow:
        await Inventory(uow).adjust("S", "WH-1", -2, change)
        await uow.commit()
    async with db.uow() as uow:
        await Inventory(uow).receive("S", "WH-2", 4, Change("receipt", "r", "x"))
        await Inventory(uow).transfer("S", "WH-2", "WH-1", 4, Change("transfer", "move", "x"))
        await uow.commit()
    assert await levels(db) == {("S", "WH-1"): (7, 3), ("S", "WH-2"): (0, 0)}
    assert await ledger_sums(db) == await levels(db)


async def test_ledger_purge_keeps_the_sums(db: MigratedDatabase) -> None:
    await setup_sku(db, "S", {"WH-1": 5})
    await apply(db, paid("S", 2))
    async with db.session_factory() as s:
        await s.execute(update(ledger).values(at=datetime.now(UTC) - timedelta(days=200)))
        await s.commit()
    await apply(db, paid("S", 1))
    assert await purge_ledger(db.uow, 100) == 2
    assert await ledger_sums(db) == await levels(db) == {("S", "WH-1"): (5, 3)}
    async with db.session_factory() as s:
        kinds = sorted((await s.execute(select(ledger.c.kind))).scalars())
    assert kinds == ["balance_forward", "reservation"]


# -- confirmed holds never expire; the sweeper goes on past a failure --------------------

LATER = datetime.now(UTC) + timedelta(hours=2)  # past the handler's 1 h TTL


def confirmed(order_id: object) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, channel="live", confirmed_at=datetime.now(UTC))


def test_inventory_hears_confirmations() -> None:
    [spec] = consumer_specs(timedelta(hours=1))
    assert "OrderConfirmed" in spec.handlers


async def test_a_confirmed_order_keeps_its_stock_past_the_ttl(db: MigratedDatabase) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    kept, held = paid("S", 2), paid("S", 3)
    await apply(db, kept)
    await apply(db, held)
    await apply(db, confirmed(kept.order_id))
    # A confirmation of an order holding nothing changes nothing and does not fail.
    await apply(db, confirmed(paid("S").order_id))
    # A re-sent OrderPaid (answered the same) does not make the confirmed hold expire again.
    await apply(db, kept)

    assert await sweep_expired(db.uow, 100, now=LATER) == 1
    assert await levels(db) == {("S", "WH-1"): (10, 2)}
    async with db.session_factory() as s:
        rows = (await s.execute(select(reservations.c.order_id, reservations.c.state))).all()
    assert {(r.order_id, r.state) for r in rows} == {
        (kept.order_id, "reserved"),
        (held.order_id, "released"),
    }
    released = [r for r in await db.outbox_rows() if r["event_type"] == "StockReleased"]
    assert [r["envelope"].payload["order_id"] for r in released] == [str(held.order_id)]
    assert await ledger_sums(db) == await levels(db)


def sweep_failures() -> float:
    return REGISTRY.get_sample_value("oms_reservation_sweep_failures_total") or 0.0


async def test_the_sweeper_goes_on_past_an_order_it_cannot_release(
    db: MigratedDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    await setup_sku(db, "POISON", {"WH-1": 10})
    first, poisoned, last = paid("S", 1), paid("POISON", 1), paid("S", 2)
    for order in (first, poisoned, last):
        await apply(db, order)
    # Releasing the poisoned order's unit breaks a constraint: its transaction fails.
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE stock ADD CONSTRAINT poison_release"
                " CHECK (sku <> 'POISON' OR reserved >= 1) NOT VALID"
            )
        )
    failures_before = sweep_failures()
    try:
        assert await sweep_expired(db.uow, 100, now=LATER) == 2
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE stock DROP CONSTRAINT poison_release"))
    assert await levels(db) == {("S", "WH-1"): (10, 0), ("POISON", "WH-1"): (10, 1)}
    assert sweep_failures() == failures_before + 1
    # The sweeper's own records (a consumer of another test may still be logging).
    [failure] = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name.startswith("inventory_svc")
    ]
    assert getattr(failure, "order_id") == str(poisoned.order_id)  # noqa: B009
    assert getattr(failure, "error") == "IntegrityError"  # noqa: B009
    # The next run releases it.
    assert await sweep_expired(db.uow, 100, now=LATER) == 1
    assert await levels(db) == {("S", "WH-1"): (10, 0), ("POISON", "WH-1"): (10, 0)}


async def test_an_order_whose_hold_expired_reserves_afresh_when_it_asks_again(
    db: MigratedDatabase,
) -> None:
    """Not the old answer for stock it no longer holds: a real reservation again."""
    await setup_sku(db, "S", {"WH-1": 10})
    order = paid("S", 3)
    await apply(db, order)
    assert await sweep_expired(db.uow, 100, now=LATER) == 1
    assert await levels(db) == {("S", "WH-1"): (10, 0)}

    emitted = await apply(db, order)
    assert "StockReserved" in types(emitted)
    assert await levels(db) == {("S", "WH-1"): (10, 3)}
    assert await ledger_sums(db) == await levels(db)


async def test_the_sweeper_goes_on_past_a_release_that_raises(
    db: MigratedDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever raises (not only the database): the other orders are released."""
    await setup_sku(db, "S", {"WH-1": 10})
    orders = [paid("S", 1) for _ in range(3)]
    for order in orders:
        await apply(db, order)
    broken = orders[1].order_id
    release = Inventory.release_expired_hold

    async def release_or_raise(self: Inventory, order_id: uuid.UUID, now: datetime) -> bool:
        if order_id == broken:
            raise RuntimeError("the release of this order fails")
        return await release(self, order_id, now)

    monkeypatch.setattr(Inventory, "release_expired_hold", release_or_raise)
    failures_before = sweep_failures()

    assert await sweep_expired(db.uow, 100, now=LATER) == 2
    assert sweep_failures() == failures_before + 1
    async with db.session_factory() as s:
        rows = await s.execute(select(reservations.c.order_id, reservations.c.state))
        assert {r.order_id: r.state for r in rows} == {
            orders[0].order_id: "released",
            broken: "reserved",
            orders[2].order_id: "released",
        }
    assert await levels(db) == {("S", "WH-1"): (10, 1)}
    assert await ledger_sums(db) == await levels(db)


class ConfirmedMeanwhile:
    """A unit of work that, before it starts, lets OrderConfirmed of ``order_id`` commit:
    the confirmation lands after the sweeper picked the order and before it releases it."""

    def __init__(self, db: MigratedDatabase, order_id: uuid.UUID) -> None:
        self._db = db
        self._order_id = order_id
        self._uow = db.uow()

    async def __aenter__(self) -> Any:
        await apply(self._db, confirmed(self._order_id))
        return await self._uow.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._uow.__aexit__(*exc)


async def test_a_confirmation_between_the_sweepers_pick_and_its_release_keeps_the_stock(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    order = paid("S", 2)
    await apply(db, order)
    units_of_work: list[Any] = []

    def uow_factory() -> Any:
        # The first unit of work picks the expired orders; the next one releases.
        uow = db.uow() if not units_of_work else ConfirmedMeanwhile(db, order.order_id)
        units_of_work.append(uow)
        return uow

    assert await sweep_expired(uow_factory, 100, now=LATER) == 0
    assert len(units_of_work) == 2  # the order was picked, then not released
    assert await levels(db) == {("S", "WH-1"): (10, 2)}
    assert await states(db) == {"reserved": 1}
    assert "StockReleased" not in [r["event_type"] for r in await db.outbox_rows()]


async def test_the_sweepers_pick_uses_the_expiry_index_and_skips_confirmed_holds(
    db: MigratedDatabase,
) -> None:
    await setup_sku(db, "S", {"WH-1": 10})
    kept, held = paid("S", 1), paid("S", 1)
    for order in (kept, held):
        await apply(db, order)
    await apply(db, confirmed(kept.order_id))
    query = expired_holds_query(LATER, 100)
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with db.session_factory() as s:
        # A handful of rows would be scanned whole; forbid that to see what serves it.
        await s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join((await s.execute(text(f"EXPLAIN {sql}"))).scalars())
        assert "reservations_open_idx" in plan, plan
        assert [r.order_id for r in await s.execute(query)] == [held.order_id]
