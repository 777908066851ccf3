"""The customer's running totals and per-day tallies (the tag rules' facts), kept in
step with each order and complaint in the caller's transaction.

Every change is one guarded upsert per table, so a buyer's thousandth order costs what
their first did. Only operator actions that move orders between customers (merge,
unmerge) rebuild a customer's totals from their orders, in one set-based statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Integer, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_svc.adapters.tables import customer_day_tallies, customer_orders, customer_totals
from customer_svc.domain.tagging import DayTally, OrderFact, OrderTotals

_TOTALS_OF = text(
    "SELECT customer_id, order_count, lifetime_value, last_order_at, channels, complaints"
    " FROM customer_totals WHERE customer_id = ANY(CAST(:ids AS uuid[]))"
)
_TALLIES_OF = text(
    "SELECT customer_id, day, cold_chain_orders, cold_chain_items, fragile_orders,"
    " fragile_items FROM customer_day_tallies"
    " WHERE customer_id = ANY(CAST(:ids AS uuid[])) AND day >= :since ORDER BY customer_id, day"
)

COLD_CHAIN = "cold_chain"
FRAGILE = "fragile"


class OrderTotalsStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def count_order(self, customer_id: uuid.UUID, order: OrderFact, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1, a cancellation) one live order."""
        totals = customer_totals.c
        insert = pg_insert(customer_totals).values(
            customer_id=customer_id,
            order_count=max(sign, 0),
            lifetime_value=order.total if sign > 0 else Decimal(0),
            last_order_at=order.ordered_at if sign > 0 else None,
            channels={order.channel: max(sign, 0)},
            complaints=0,
        )
        channel_count = func.coalesce(
            customer_totals.c.channels[order.channel].astext.cast(Integer()), 0
        )
        await self._session.execute(
            insert.on_conflict_do_update(
                index_elements=[totals.customer_id],
                set_={
                    "order_count": totals.order_count + sign,
                    "lifetime_value": totals.lifetime_value + sign * order.total,
                    "last_order_at": func.greatest(totals.last_order_at, order.ordered_at)
                    if sign > 0
                    else totals.last_order_at,
                    "channels": totals.channels.op("||")(
                        func.jsonb_build_object(order.channel, channel_count + sign)
                    ),
                },
            )
        )
        if sign < 0:
            await self._refresh_last_order(customer_id)
        cold = COLD_CHAIN in order.delivery_requirements
        fragile = FRAGILE in order.delivery_requirements
        if not (cold or fragile):
            return
        tally = customer_day_tallies.c
        deltas = {
            "cold_chain_orders": sign if cold else 0,
            "cold_chain_items": sign * order.item_count if cold else 0,
            "fragile_orders": sign if fragile else 0,
            "fragile_items": sign * order.item_count if fragile else 0,
        }
        await self._session.execute(
            pg_insert(customer_day_tallies)
            .values(customer_id=customer_id, day=order.ordered_at.astimezone(UTC).date(), **deltas)
            .on_conflict_do_update(
                index_elements=[tally.customer_id, tally.day],
                set_={k: getattr(tally, k) + v for k, v in deltas.items()},
            )
        )

    async def _refresh_last_order(self, customer_id: uuid.UUID) -> None:
        """The latest live order after a cancellation (an indexed max, not a scan)."""
        latest = (
            select(func.max(customer_orders.c.ordered_at))
            .where(
                customer_orders.c.customer_id == customer_id,
                customer_orders.c.status != "cancelled",
            )
            .scalar_subquery()
        )
        await self._session.execute(
            customer_totals.update()
            .where(customer_totals.c.customer_id == customer_id)
            .values(last_order_at=latest)
        )

    async def count_complaint(self, customer_id: uuid.UUID) -> None:
        await self._session.execute(
            pg_insert(customer_totals)
            .values(
                customer_id=customer_id,
                order_count=0,
                lifetime_value=Decimal(0),
                channels={},
                complaints=1,
            )
            .on_conflict_do_update(
                index_elements=[customer_totals.c.customer_id],
                set_={"complaints": customer_totals.c.complaints + 1},
            )
        )

    async def load(
        self, customer_id: uuid.UUID, since: datetime
    ) -> tuple[OrderTotals, list[DayTally]]:
        """The customer's totals and the tallies of the days from ``since`` on."""
        return (await self.load_many([customer_id], since))[customer_id]

    async def load_many(
        self, customer_ids: list[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, tuple[OrderTotals, list[DayTally]]]:
        """:meth:`load` for many customers, two statements in all."""
        found: dict[uuid.UUID, tuple[OrderTotals, list[DayTally]]] = {
            c: (OrderTotals(), []) for c in customer_ids
        }
        for row in await self._session.execute(_TOTALS_OF, {"ids": customer_ids}):
            found[row.customer_id] = (
                OrderTotals(
                    order_count=row.order_count,
                    lifetime_value=row.lifetime_value,
                    last_order_at=row.last_order_at,
                    channels=row.channels or {},
                    complaints=row.complaints,
                ),
                [],
            )
        days = await self._session.execute(
            _TALLIES_OF, {"ids": customer_ids, "since": since.astimezone(UTC).date()}
        )
        for d in days:
            found[d.customer_id][1].append(
                DayTally(
                    d.day,
                    d.cold_chain_orders,
                    d.cold_chain_items,
                    d.fragile_orders,
                    d.fragile_items,
                )
            )
        return found

    async def rebuild(self, customer_ids: Iterable[uuid.UUID]) -> None:
        """Recompute the totals of ``customer_ids`` from their orders and complaints
        (after a merge or unmerge moved some between them)."""
        ids = list(customer_ids)
        if not ids:
            return
        await self._session.execute(
            delete(customer_day_tallies).where(customer_day_tallies.c.customer_id.in_(ids))
        )
        await self._session.execute(
            delete(customer_totals).where(customer_totals.c.customer_id.in_(ids))
        )
        await self._session.execute(text(REBUILD_TOTALS), {"ids": ids})
        await self._session.execute(text(REBUILD_TALLIES), {"ids": ids})


#: Totals from scratch for the customers ``:ids`` (NULL: every customer, for the
#: migration that introduces the table).
REBUILD_TOTALS = """
INSERT INTO customer_totals
    (customer_id, order_count, lifetime_value, last_order_at, channels, complaints)
SELECT c.id,
       COALESCE(o.order_count, 0),
       COALESCE(o.lifetime_value, 0),
       o.last_order_at,
       COALESCE(ch.channels, '{}'::jsonb),
       COALESCE(k.complaints, 0)
FROM customers c
LEFT JOIN (
    SELECT customer_id, count(*) AS order_count, sum(total) AS lifetime_value,
           max(ordered_at) AS last_order_at
    FROM customer_orders WHERE status <> 'cancelled' GROUP BY customer_id
) o ON o.customer_id = c.id
LEFT JOIN (
    SELECT customer_id, jsonb_object_agg(channel, n) AS channels
    FROM (
        SELECT customer_id, channel, count(*) AS n FROM customer_orders
        WHERE status <> 'cancelled' GROUP BY customer_id, channel
    ) per_channel GROUP BY customer_id
) ch ON ch.customer_id = c.id
LEFT JOIN (
    SELECT customer_id, count(*) AS complaints FROM complaints GROUP BY customer_id
) k ON k.customer_id = c.id
WHERE CAST(:ids AS uuid[]) IS NULL OR c.id = ANY(CAST(:ids AS uuid[]))
"""

REBUILD_TALLIES = """
INSERT INTO customer_day_tallies
    (customer_id, day, cold_chain_orders, cold_chain_items, fragile_orders, fragile_items)
SELECT customer_id, (ordered_at AT TIME ZONE 'UTC')::date,
       count(*) FILTER (WHERE delivery_requirements ? 'cold_chain'),
       COALESCE(sum(item_count) FILTER (WHERE delivery_requirements ? 'cold_chain'), 0),
       count(*) FILTER (WHERE delivery_requirements ? 'fragile'),
       COALESCE(sum(item_count) FILTER (WHERE delivery_requirements ? 'fragile'), 0)
FROM customer_orders
WHERE status <> 'cancelled'
  AND (delivery_requirements ? 'cold_chain' OR delivery_requirements ? 'fragile')
  AND (CAST(:ids AS uuid[]) IS NULL OR customer_id = ANY(CAST(:ids AS uuid[])))
GROUP BY customer_id, (ordered_at AT TIME ZONE 'UTC')::date
"""
