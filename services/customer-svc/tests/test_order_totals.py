"""The tag rules' facts are running totals: kept in step with orders, cancellations and
complaints, equal to what the history says, and as cheap for a busy buyer as for a new one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from customer_svc.adapters.order_totals import OrderTotalsStore
from customer_svc.adapters.tables import customer_day_tallies, customer_totals, customers
from customer_svc.domain.tagging import (
    DayTally,
    OrderFact,
    OrderTotals,
    facts,
    facts_from_totals,
)
from customer_svc.profiles import customer_facts, record_order, set_order_status

NOW = datetime.now(UTC)


async def new_customer(session: AsyncSession) -> uuid.UUID:
    customer_id = uuid.uuid4()
    await session.execute(
        customers.insert().values(id=customer_id, display_name="Ana", created_at=NOW)
    )
    return customer_id


async def place(
    session: AsyncSession,
    customer_id: uuid.UUID,
    *,
    days_ago: float = 0,
    reqs: tuple[str, ...] = (),
    total: str = "10.00",
    items: int = 1,
    channel: str = "web",
) -> uuid.UUID:
    order_id = uuid.uuid4()
    await record_order(
        session,
        customer_id,
        order_id=order_id,
        channel=channel,
        total=Decimal(total),
        currency="EUR",
        item_count=items,
        delivery_requirements=list(reqs),
        ordered_at=NOW - timedelta(days=days_ago),
    )
    return order_id


async def snapshot(session: AsyncSession, customer_id: uuid.UUID) -> dict[str, Any]:
    totals = (
        await session.execute(
            select(customer_totals).where(customer_totals.c.customer_id == customer_id)
        )
    ).one()
    days = await session.execute(
        select(customer_day_tallies)
        .where(customer_day_tallies.c.customer_id == customer_id)
        .order_by(customer_day_tallies.c.day)
    )
    return {
        "totals": dict(totals._mapping),
        "days": [dict(d._mapping) for d in days if d.cold_chain_orders or d.fragile_orders],
    }


async def test_totals_follow_orders_and_cancellations_and_equal_a_rebuild_from_history(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with db() as session:
        ana = await new_customer(session)
        await place(session, ana, days_ago=10, reqs=("cold_chain",), items=2)
        await place(session, ana, days_ago=89, reqs=("cold_chain",), total="30.50")
        newest = await place(session, ana, days_ago=1, channel="app", total="5.00")
        await place(session, ana, days_ago=170, reqs=("fragile",), items=3)
        cancelled = await place(session, ana, days_ago=5, reqs=("cold_chain", "fragile"))
        assert await set_order_status(session, cancelled, "cancelled") == ana
        assert await set_order_status(session, cancelled, "cancelled") == ana  # twice: once
        assert await set_order_status(session, newest, "cancelled") == ana
        kept = await snapshot(session, ana)
        assert kept["totals"]["order_count"] == 3
        assert kept["totals"]["lifetime_value"] == Decimal("50.50")
        assert kept["totals"]["channels"] == {"web": 3, "app": 0}
        # the cancelled newest order no longer counts as the last order
        assert kept["totals"]["last_order_at"] == NOW - timedelta(days=10)

        await OrderTotalsStore(session).rebuild([ana])
        rebuilt = await snapshot(session, ana)
        assert rebuilt["totals"] | {"channels": {}} == kept["totals"] | {"channels": {}}
        assert {k: v for k, v in kept["totals"]["channels"].items() if v} == rebuilt["totals"][
            "channels"
        ]
        assert rebuilt["days"] == kept["days"]

        fact_values = await customer_facts(session, ana, NOW)
        assert fact_values["order_count"] == 3
        assert fact_values["cold_chain_orders_90d"] == 2
        assert fact_values["cold_chain_items_90d"] == 3
        assert fact_values["fragile_items_180d"] == 3
        assert fact_values["channels"] == ["web"]


async def test_an_order_of_a_buyer_with_a_long_history_costs_what_a_new_buyers_does(
    db: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    """Same statements, and none of them reads the customer's order history (only the order
    itself, by its key): 300 past orders or none."""
    async with db() as session:
        busy, fresh = await new_customer(session), await new_customer(session)
        for i in range(300):
            await place(session, busy, days_ago=i % 200, reqs=("cold_chain",) if i % 3 else ())
        await session.commit()

    async def statements_of_one_order(customer_id: uuid.UUID) -> list[str]:
        seen: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(" ".join(statement.split()))

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            async with db() as session:
                order_id = await place(session, customer_id, reqs=("cold_chain",))
                await customer_facts(session, customer_id, NOW)
                await set_order_status(session, order_id, "shipped")
                await session.commit()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
        return seen

    busy_statements = await statements_of_one_order(busy)
    assert busy_statements == await statements_of_one_order(fresh)
    history_reads = [
        s
        for s in busy_statements
        if s.startswith("SELECT") and "FROM customer_orders" in s and "order_id =" not in s
    ]
    assert history_reads == []


def test_totals_give_the_facts_the_history_gives() -> None:
    """The same facts as from the whole history (windows by whole UTC days)."""
    noon = datetime(2026, 11, 11, 12, tzinfo=UTC)
    history = [
        OrderFact(Decimal("10"), 1, ["cold_chain"], "created", "web", noon - timedelta(days=10)),
        OrderFact(Decimal("20"), 3, ["cold_chain"], "created", "web", noon - timedelta(days=80)),
        OrderFact(Decimal("5"), 2, ["fragile"], "created", "app", noon - timedelta(days=100)),
        OrderFact(Decimal("7"), 1, [], "created", "web", noon - timedelta(days=400)),
    ]
    totals = OrderTotals(
        order_count=4,
        lifetime_value=Decimal("42"),
        last_order_at=noon - timedelta(days=10),
        channels={"web": 3, "app": 1, "tmall": 0},
        complaints=2,
    )
    days = [
        DayTally((noon - timedelta(days=10)).date(), 1, 1, 0, 0),
        DayTally((noon - timedelta(days=80)).date(), 1, 3, 0, 0),
        DayTally((noon - timedelta(days=100)).date(), 0, 0, 1, 2),
    ]
    assert facts_from_totals(totals, days, noon) == facts(history, 2, noon)
