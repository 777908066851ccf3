"""The board's read model fed by notifier's handlers, on a real PostgreSQL.

Events go through the production consumers on a real broker, so
these tests also prove the projection is wired in and shares the inbox's transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.adapters.board import BoardQueries
from notifier.adapters.board_tables import board_exceptions, board_orders, board_throughput
from notifier.domain.board import SLA_STAGE_ENDS, sla_running
from oms_contracts import Event, make_envelope
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
    RoutedShipment,
    SlaAtRisk,
    SlaBreached,
    StatusTransition,
    StockLevelChanged,
    StockLow,
)

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def created(
    order_id: uuid.UUID, channel: str = "web", at: datetime = T0, ref: str | None = None
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        channel=channel,
        channel_order_id=ref or f"REF-{order_id.hex[:6]}",
        customer=CustomerIdentity(platform_user_id="u1", name="Li Lei"),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=2, unit_price=Decimal("9.50"))],
        currency="CNY",
        total=Decimal("19.00"),
        shipping_address=Address(region="CN-SH", city="Shanghai"),
        created_at=at,
    )


def moved(
    order_id: uuid.UUID,
    to_state: str,
    at: datetime,
    *,
    from_state: str | None = None,
    reason: str | None = None,
    channel: str = "web",
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel=channel,
        from_state=from_state,
        to_state=to_state,
        actor="system",
        reason=reason,
        changed_at=at,
    )


def at_risk(order_id: uuid.UUID, deadline: datetime, raised_at: datetime = T0) -> SlaAtRisk:
    return SlaAtRisk(
        order_id=order_id,
        channel="web",
        order_class="standard",
        stage="ship",
        deadline=deadline,
        raised_at=raised_at,
    )


async def dispatch(deliver, event: Event, **kwargs: Any) -> None:
    await deliver(event, **kwargs)


async def order_row(db: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> dict[str, Any]:
    async with db() as session:
        row = (
            await session.execute(select(board_orders).where(board_orders.c.order_id == order_id))
        ).one()
    return dict(row._mapping)


def queries_of(db: async_sessionmaker[AsyncSession]) -> Any:
    """``run(fn)`` awaits ``fn(BoardQueries)`` in a fresh session."""

    async def run(fn: Any) -> Any:
        async with db() as session:
            return await fn(BoardQueries(session))

    return run


async def test_orders_are_counted_per_state_and_channel(db, deliver) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for order_id, channel in ((a, "web"), (b, "web"), (c, "app")):
        await dispatch(deliver, created(order_id, channel))
        await dispatch(deliver, moved(order_id, "received", T0, channel=channel))
    await dispatch(deliver, moved(a, "paid", T0 + timedelta(seconds=1), from_state="received"))

    run = queries_of(db)
    assert sorted(await run(lambda q: q.counts())) == [
        ("paid", "web", 1),
        ("received", "app", 1),
        ("received", "web", 1),
    ]
    row = await order_row(db, a)
    assert (row["channel_order_id"], row["total"], row["currency"]) == (
        f"REF-{a.hex[:6]}",
        Decimal("19.00"),
        "CNY",
    )


async def test_a_late_older_transition_does_not_roll_the_state_back(db, deliver) -> None:
    order_id = uuid.uuid4()
    await dispatch(deliver, created(order_id))
    await dispatch(
        deliver, moved(order_id, "confirmed", T0 + timedelta(seconds=5), from_state="reserved")
    )
    await dispatch(
        deliver, moved(order_id, "paid", T0 + timedelta(seconds=2), from_state="received")
    )
    row = await order_row(db, order_id)
    assert row["state"] == "confirmed"
    assert row["state_changed_at"] == T0 + timedelta(seconds=5)


async def test_a_transition_seen_before_the_order_is_kept_when_the_order_arrives(
    db, deliver
) -> None:
    order_id = uuid.uuid4()
    await dispatch(deliver, moved(order_id, "paid", T0, from_state="received"))
    await dispatch(deliver, created(order_id))
    row = await order_row(db, order_id)
    assert (row["state"], row["channel"]) == ("paid", "web")


async def test_throughput_counts_each_order_once_in_the_minute_it_was_created(db, deliver) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await dispatch(deliver, created(first, at=T0 + timedelta(seconds=10)))
    # The same order announced again under a new event id: still one order.
    await dispatch(deliver, created(first, at=T0 + timedelta(seconds=10)))
    await dispatch(deliver, created(second, at=T0 + timedelta(seconds=50)))
    await dispatch(deliver, created(uuid.uuid4(), at=T0 + timedelta(minutes=1)))

    async with db() as session:
        rows = (await session.execute(select(board_throughput))).all()
    assert sorted((r.minute, r.orders) for r in rows) == [
        (T0, 2),
        (T0 + timedelta(minutes=1), 1),
    ]


async def test_redelivery_changes_nothing(db, deliver) -> None:
    order_id = uuid.uuid4()
    event = created(order_id)
    envelope = make_envelope(event, producer="order-svc")
    await dispatch(deliver, event, envelope=envelope)
    await dispatch(deliver, event, envelope=envelope)
    async with db() as session:
        assert (await session.execute(select(board_throughput.c.orders))).scalars().all() == [1]


async def test_an_order_parked_in_exception_is_queued_under_its_cause_until_it_leaves(
    db, deliver
) -> None:
    order_id = uuid.uuid4()
    run = queries_of(db)
    await dispatch(deliver, created(order_id))
    await dispatch(
        deliver,
        moved(
            order_id,
            "exception",
            T0 + timedelta(seconds=3),
            from_state="paid",
            reason="stock_rejected (SKU-1: insufficient)",
        ),
    )
    page = await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))
    [item] = page.items
    assert (item["order_id"], item["cause"], item["state"]) == (
        order_id,
        "stock_rejected",
        "exception",
    )
    assert item["detail"] == "stock_rejected (SKU-1: insufficient)"
    assert await run(lambda q: q.exception_stats()) == {"stock_rejected": 1}

    await dispatch(
        deliver,
        moved(order_id, "paid", T0 + timedelta(seconds=9), from_state="exception", reason="retry"),
    )
    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 0
    assert await run(lambda q: q.exception_stats()) == {}


async def test_the_earlier_transitions_of_one_commit_are_applied_in_order(db, deliver) -> None:
    """order-svc publishes one OrderStatusChanged per order and commit; the transitions
    before the last ride in ``earlier`` and move the board as their own events did."""
    order_id = uuid.uuid4()
    run = queries_of(db)
    await dispatch(deliver, created(order_id))
    parked = StatusTransition(
        from_state="paid",
        to_state="exception",
        actor="system",
        reason="stock_rejected (SKU-1: insufficient)",
        changed_at=T0 + timedelta(seconds=3),
    )
    event = moved(order_id, "paid", T0 + timedelta(seconds=4), from_state="exception")
    await dispatch(deliver, event.model_copy(update={"earlier": [parked]}))

    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 0
    async with db() as session:
        [row] = (await session.execute(select(board_exceptions))).all()
        [state] = (await session.execute(select(board_orders.c.state))).scalars().all()
    assert (row.order_id, row.cause, row.resolution) == (
        order_id,
        "stock_rejected",
        "moved to paid",
    )
    assert state == "paid"


async def test_explicit_exception_events_open_and_close_the_queue_entry(db, deliver) -> None:
    order_id, exception_id = uuid.uuid4(), uuid.uuid4()
    run = queries_of(db)
    raised = OrderExceptionRaised(
        exception_id=exception_id,
        order_id=order_id,
        channel="app",
        cause="credit_degraded",
        detail="bureau timeout",
        raised_at=T0,
    )
    await dispatch(deliver, raised)
    page = await run(lambda q: q.exceptions(cause="credit_degraded", limit=10, offset=0))
    assert [(i["exception_id"], i["detail"]) for i in page.items] == [
        (exception_id, "bureau timeout")
    ]
    assert (await run(lambda q: q.exceptions(cause="sla_breached", limit=10, offset=0))).total == 0

    resolved = OrderExceptionResolved(
        exception_id=exception_id,
        order_id=order_id,
        channel="app",
        cause="credit_degraded",
        action="release",
        actor="ops-1",
        resolved_at=T0 + timedelta(minutes=1),
    )
    await dispatch(deliver, resolved)
    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 0
    [entry] = await run(lambda q: q.order_exceptions(order_id))
    assert entry["resolution"] == "release by ops-1"


async def test_a_resolution_arriving_before_its_raise_keeps_the_exception_closed(
    db, deliver
) -> None:
    order_id, exception_id = uuid.uuid4(), uuid.uuid4()
    common: dict[str, Any] = {
        "exception_id": exception_id,
        "order_id": order_id,
        "channel": "web",
        "cause": "invalid_address",
    }
    await dispatch(
        deliver,
        OrderExceptionResolved(
            **common, action="retry", actor="ops", resolved_at=T0 + timedelta(minutes=2)
        ),
    )
    await dispatch(deliver, OrderExceptionRaised(**common, raised_at=T0))
    run = queries_of(db)
    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 0
    # Raised again after that resolution: open again.
    await dispatch(deliver, OrderExceptionRaised(**common, raised_at=T0 + timedelta(minutes=5)))
    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 1


async def test_the_same_exception_told_by_state_and_by_event_is_listed_once(db, deliver) -> None:
    order_id, exception_id = uuid.uuid4(), uuid.uuid4()
    await dispatch(
        deliver,
        moved(order_id, "exception", T0, from_state="paid", reason="stock_rejected (S: x)"),
    )
    await dispatch(
        deliver,
        OrderExceptionRaised(
            exception_id=exception_id,
            order_id=order_id,
            channel="web",
            cause="stock_rejected",
            raised_at=T0 + timedelta(milliseconds=5),
        ),
    )
    run = queries_of(db)
    page = await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))
    [item] = page.items
    assert (item["exception_id"], item["raised_at"]) == (exception_id, T0)
    # Leaving the exception state closes it, since it is what parked the order.
    await dispatch(
        deliver, moved(order_id, "paid", T0 + timedelta(minutes=1), from_state="exception")
    )
    assert (await run(lambda q: q.exceptions(cause=None, limit=10, offset=0))).total == 0


async def test_sla_warnings_nearest_deadline_first_until_the_order_is_done(db, deliver) -> None:
    soon, later, done = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await dispatch(deliver, at_risk(later, T0 + timedelta(hours=2)))
    await dispatch(deliver, at_risk(soon, T0 + timedelta(minutes=10)))
    await dispatch(deliver, at_risk(done, T0 + timedelta(minutes=1)))
    await dispatch(deliver, moved(done, "delivered", T0 + timedelta(seconds=30)))
    breached = SlaBreached(
        order_id=soon,
        channel="web",
        order_class="standard",
        stage="ship",
        deadline=T0 + timedelta(minutes=10),
        raised_at=T0 + timedelta(minutes=10),
    )
    await dispatch(deliver, breached)
    # An older warning arriving late does not undo the breach.
    await dispatch(deliver, at_risk(soon, T0 + timedelta(minutes=10), raised_at=T0))

    run = queries_of(db)
    page = await run(lambda q: q.sla(limit=10, offset=0))
    assert [(i["order_id"], i["sla_status"]) for i in page.items] == [
        (soon, "breached"),
        (later, "at_risk"),
    ]
    assert page.total == 2
    second = await run(lambda q: q.sla(limit=1, offset=1))
    assert [i["order_id"] for i in second.items] == [later]
    assert second.total == 2


async def test_credit_degraded_routing_and_customer_are_kept_on_the_order(db, deliver) -> None:
    order_id, customer_id = uuid.uuid4(), uuid.uuid4()
    await dispatch(deliver, created(order_id))
    await dispatch(
        deliver,
        CreditCheckDegraded(order_id=order_id, channel="web", reason="timeout", degraded_at=T0),
    )
    await dispatch(
        deliver,
        OrderRouted(
            order_id=order_id,
            channel="web",
            shipments=[
                RoutedShipment(warehouse="WH-SH", line_nos=[1], score=0.9, distance_km=12.5)
            ],
            split=False,
            routed_at=T0,
        ),
    )
    await dispatch(
        deliver,
        CustomerResolved(
            customer_id=customer_id,
            order_id=order_id,
            channel="web",
            platform_user_id="u1",
            new_customer=True,
            resolved_at=T0,
        ),
    )
    row = await order_row(db, order_id)
    assert (row["credit_degraded"], row["credit_reason"]) == (True, "timeout")
    assert row["customer_id"] == customer_id
    assert row["routing"]["shipments"][0]["warehouse"] == "WH-SH"
    assert row["routing"]["split"] is False
    run = queries_of(db)
    page = await run(lambda q: q.credit_degraded(limit=10, offset=0))
    assert [i["order_id"] for i in page.items] == [order_id]


async def test_low_stock_is_listed_until_the_stock_is_back(db, deliver) -> None:
    run = queries_of(db)
    await dispatch(deliver, StockLow(sku="SKU-L", available=2, safety_stock=5, raised_at=T0))
    assert [s["sku"] for s in await run(lambda q: q.low_stock(limit=10))] == ["SKU-L"]

    def level(warehouse: str, available: int, seconds: int) -> StockLevelChanged:
        return StockLevelChanged(
            sku="SKU-L",
            warehouse=warehouse,
            on_hand=available,
            reserved=0,
            available=available,
            changed_at=T0 + timedelta(seconds=seconds),
        )

    await dispatch(deliver, level("WH-SH", 3, 10))
    assert [s["sku"] for s in await run(lambda q: q.low_stock(limit=10))] == ["SKU-L"]
    await dispatch(deliver, level("WH-BJ", 2, 20))
    assert await run(lambda q: q.low_stock(limit=10)) == []


async def test_paused_channels_are_listed_until_resumed(db, deliver) -> None:
    run = queries_of(db)
    await dispatch(
        deliver,
        ChannelSalesPaused(sku="SKU-P", channel="live", reason="low", paused_at=T0),
    )
    [paused] = await run(lambda q: q.paused_channels(limit=10))
    assert (paused["sku"], paused["channel"], paused["reason"]) == ("SKU-P", "live", "low")
    # A resume older than the pause (arriving late) changes nothing.
    await dispatch(
        deliver,
        ChannelSalesResumed(
            sku="SKU-P", channel="live", reason="old", resumed_at=T0 - timedelta(minutes=1)
        ),
    )
    assert len(await run(lambda q: q.paused_channels(limit=10))) == 1
    await dispatch(
        deliver,
        ChannelSalesResumed(
            sku="SKU-P", channel="live", reason="back", resumed_at=T0 + timedelta(minutes=1)
        ),
    )
    assert await run(lambda q: q.paused_channels(limit=10)) == []


async def test_the_sla_query_keeps_exactly_the_warnings_whose_stage_still_runs(db) -> None:
    """The SQL filter and ``domain.board.sla_running`` agree on every stage and state."""
    states = [None, "received", "confirmed", "picking", "shipped", "delivered", "cancelled"]
    stages = [*SLA_STAGE_ENDS, "some_new_stage"]
    expected = set()
    async with db() as session:
        for stage in stages:
            for state in states:
                order_id = uuid.uuid4()
                await session.execute(
                    board_orders.insert().values(
                        order_id=order_id,
                        state=state,
                        sla_stage=stage,
                        sla_deadline=T0,
                        sla_status="at_risk",
                    )
                )
                if sla_running(stage, state):
                    expected.add(order_id)
        await session.commit()
    page = await queries_of(db)(lambda q: q.sla(limit=200, offset=0))
    assert {i["order_id"] for i in page.items} == expected
    assert page.total == len(expected)
