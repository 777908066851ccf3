"""Order persistence: the aggregate in, the aggregate out, and read views for the API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.adapters.sla_store import SlaRepository
from order_svc.adapters.tables import order_lines, order_transitions, orders
from order_svc.domain.order import Line, Order, OrderState

_SAVE_ORDERS = text(
    "UPDATE orders SET state = x.state, customer_id = x.customer,"
    " exception_reason = x.reason, credit_degraded = x.degraded, updated_at = now()"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS text[]), CAST(:customers AS uuid[]),"
    " CAST(:reasons AS text[]), CAST(:degraded AS boolean[]))"
    " AS x(id, state, customer, reason, degraded) WHERE orders.id = x.id"
)
#: Many rows in one statement (SQLAlchemy's executemany runs the INSERT once per row).
_INSERT_TRANSITIONS = text(
    "INSERT INTO order_transitions (order_id, from_state, to_state, actor, reason, at)"
    " SELECT o, f, t, a, r, at FROM unnest(CAST(:orders AS uuid[]), CAST(:froms AS text[]),"
    " CAST(:tos AS text[]), CAST(:actors AS text[]), CAST(:reasons AS text[]),"
    " CAST(:at AS timestamptz[])) WITH ORDINALITY AS x(o, f, t, a, r, at, n) ORDER BY n"
)
#: A batch of new orders in one constant statement (prepared once). The fields of
#: ``details`` it stores; JSON ones are serialized by :func:`_json`.
_DETAIL_COLUMNS = frozenset(
    {
        "customer",
        "shipping_address",
        "delivery_requirements",
        "notes",
        "paid_at",
        "channel_updated_at",
    }
)
_INSERT_ORDERS = text(
    "INSERT INTO orders (id, channel, channel_order_id, state, customer_id, customer,"
    " currency, total, priority, shipping_address, delivery_requirements, notes, paid_at,"
    " exception_reason, credit_degraded, channel_updated_at, created_at, updated_at)"
    " SELECT i, ch, co, st, cid, c::jsonb, cur, t, pr, sa::jsonb, dr::jsonb, n, pa, er, cd,"
    " cu, :now, :now FROM unnest(CAST(:ids AS uuid[]), CAST(:channels AS text[]),"
    " CAST(:channel_order_ids AS text[]), CAST(:states AS text[]),"
    " CAST(:customer_ids AS uuid[]), CAST(:customers AS text[]), CAST(:currencies AS text[]),"
    " CAST(:totals AS numeric[]), CAST(:priorities AS text[]), CAST(:addresses AS text[]),"
    " CAST(:requirements AS text[]), CAST(:notes AS text[]), CAST(:paid_at AS timestamptz[]),"
    " CAST(:reasons AS text[]), CAST(:degraded AS boolean[]),"
    " CAST(:channel_updated_at AS timestamptz[]))"
    " AS x(i, ch, co, st, cid, c, cur, t, pr, sa, dr, n, pa, er, cd, cu)"
)
_INSERT_LINES = text(
    "INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price, warehouse)"
    " SELECT * FROM unnest(CAST(:orders AS uuid[]), CAST(:lines AS int[]),"
    " CAST(:skus AS text[]), CAST(:qtys AS int[]), CAST(:prices AS numeric[]),"
    " CAST(:warehouses AS text[]))"
)
_SAVE_WAREHOUSES = text(
    "UPDATE order_lines SET warehouse = x.warehouse"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:lines AS int[]), CAST(:warehouses AS text[]))"
    " AS x(id, line_no, warehouse)"
    " WHERE order_lines.order_id = x.id AND order_lines.line_no = x.line_no"
)


def _json(value: Any) -> str | None:
    """A JSON column's value as the statement takes it (None stays SQL NULL)."""
    return None if value is None else json.dumps(value)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        #: Order id -> each line's warehouse as loaded: ``save`` writes only the lines
        #: whose warehouse changed (most saves change none).
        self._loaded_warehouses: dict[uuid.UUID, dict[int, str | None]] = {}

    async def exists(self, order_id: uuid.UUID) -> bool:
        row = await self._session.execute(select(orders.c.id).where(orders.c.id == order_id))
        return row.first() is not None

    async def existing(self, order_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``order_ids`` are stored."""
        rows = await self._session.execute(select(orders.c.id).where(orders.c.id.in_(order_ids)))
        return {row.id for row in rows}

    async def add_many(self, new: list[tuple[Order, dict[str, Any]]]) -> None:
        """:meth:`add` for many orders: one statement each for orders, lines, transitions."""
        if not new:
            return
        unknown = set().union(*(details for _, details in new)) - _DETAIL_COLUMNS
        if unknown:
            raise ValueError(f"add_many has no column for {sorted(unknown)}")
        await self._session.execute(
            _INSERT_ORDERS,
            {
                "now": datetime.now(UTC),
                "ids": [o.id for o, _ in new],
                "channels": [o.channel for o, _ in new],
                "channel_order_ids": [o.channel_order_id for o, _ in new],
                "states": [o.state.value for o, _ in new],
                "customer_ids": [o.customer_id for o, _ in new],
                "customers": [_json(d.get("customer")) for _, d in new],
                "currencies": [o.currency for o, _ in new],
                "totals": [o.total for o, _ in new],
                "priorities": [o.priority for o, _ in new],
                "addresses": [_json(d.get("shipping_address")) for _, d in new],
                "requirements": [_json(d.get("delivery_requirements")) for _, d in new],
                "notes": [d.get("notes") for _, d in new],
                "paid_at": [d.get("paid_at") for _, d in new],
                "reasons": [o.exception_reason for o, _ in new],
                "degraded": [o.credit_degraded for o, _ in new],
                "channel_updated_at": [d.get("channel_updated_at") for _, d in new],
            },
        )
        await self._insert_lines(*(order for order, _ in new))
        await self._flush_transitions(*(order for order, _ in new))

    async def add(self, order: Order, details: dict[str, Any]) -> None:
        """Store a new order; ``details`` are the fields the aggregate does not govern."""
        now = datetime.now(UTC)
        await self._session.execute(
            insert(orders).values(
                id=order.id,
                channel=order.channel,
                channel_order_id=order.channel_order_id,
                state=order.state.value,
                customer_id=order.customer_id,
                currency=order.currency,
                total=order.total,
                priority=order.priority,
                exception_reason=order.exception_reason,
                credit_degraded=order.credit_degraded,
                created_at=now,
                updated_at=now,
                **details,
            )
        )
        await self._insert_lines(order)
        await self._flush_transitions(order)

    async def get_for_update(self, order_id: uuid.UUID) -> Order | None:
        """Load the aggregate with its row locked until the unit of work ends."""
        return (await self.get_many_for_update([order_id])).get(order_id)

    async def get_many_for_update(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, Order]:
        """Load many aggregates in two statements, their rows locked in id order (the
        lock order every batch keeps, so two batches cannot deadlock on orders)."""
        rows = (
            await self._session.execute(
                select(orders)
                .where(orders.c.id.in_(sorted(set(order_ids))))
                .order_by(orders.c.id)
                .with_for_update()
            )
        ).all()
        if not rows:
            return {}
        lines: dict[uuid.UUID, list[Line]] = {row.id: [] for row in rows}
        for r in await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(list(lines)))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        ):
            lines[r.order_id].append(Line(r.line_no, r.sku, r.qty, r.unit_price, r.warehouse))
        loaded: dict[uuid.UUID, Order] = {}
        for row in rows:
            self._loaded_warehouses[row.id] = {ln.line_no: ln.warehouse for ln in lines[row.id]}
            loaded[row.id] = Order(
                id=row.id,
                channel=row.channel,
                channel_order_id=row.channel_order_id,
                state=OrderState(row.state),
                lines=lines[row.id],
                currency=row.currency,
                priority=row.priority,
                customer_id=row.customer_id,
                platform_user_id=(row.customer or {}).get("platform_user_id"),
                exception_reason=row.exception_reason,
                credit_degraded=row.credit_degraded,
                paid_at=row.paid_at,
            )
        return loaded

    async def save_many(self, changed: list[Order]) -> None:
        """:meth:`save` for many orders: one statement for the orders, one for the lines
        whose warehouse changed, one for the transitions."""
        if not changed:
            return
        await self._session.execute(
            _SAVE_ORDERS,
            {
                "ids": [o.id for o in changed],
                "states": [o.state.value for o in changed],
                "customers": [o.customer_id for o in changed],
                "reasons": [o.exception_reason for o in changed],
                "degraded": [o.credit_degraded for o in changed],
            },
        )
        moved = [
            (order.id, line.line_no, line.warehouse)
            for order in changed
            for line in order.lines
            if self._loaded_warehouses.get(order.id, {}).get(line.line_no, "") != line.warehouse
        ]
        if moved:
            await self._session.execute(
                _SAVE_WAREHOUSES,
                {
                    "ids": [o for o, _, _ in moved],
                    "lines": [n for _, n, _ in moved],
                    "warehouses": [w for _, _, w in moved],
                },
            )
        for order in changed:
            self._loaded_warehouses[order.id] = {ln.line_no: ln.warehouse for ln in order.lines}
        await self._flush_transitions(*changed)

    async def save(self, order: Order) -> None:
        await self._session.execute(
            update(orders)
            .where(orders.c.id == order.id)
            .values(
                state=order.state.value,
                customer_id=order.customer_id,
                exception_reason=order.exception_reason,
                credit_degraded=order.credit_degraded,
                updated_at=func.now(),
            )
        )
        loaded = self._loaded_warehouses.get(order.id)
        for line in order.lines:
            if loaded is not None and loaded.get(line.line_no, "") == line.warehouse:
                continue
            await self._session.execute(
                update(order_lines)
                .where(order_lines.c.order_id == order.id, order_lines.c.line_no == line.line_no)
                .values(warehouse=line.warehouse)
            )
        self._loaded_warehouses[order.id] = {line.line_no: line.warehouse for line in order.lines}
        await self._flush_transitions(order)

    async def _flush_transitions(self, *changed: Order) -> None:
        pending = [(order.id, t) for order in changed for t in order.pending]
        if pending:
            await self._session.execute(
                _INSERT_TRANSITIONS,
                {
                    "orders": [o for o, _ in pending],
                    "froms": [t.from_state for _, t in pending],
                    "tos": [t.to_state for _, t in pending],
                    "actors": [t.actor for _, t in pending],
                    "reasons": [t.reason for _, t in pending],
                    "at": [t.at for _, t in pending],
                },
            )
        for order in changed:
            order.pending.clear()

    async def replace_lines(self, order: Order) -> None:
        """Store the order's lines as they are now (a channel changed them before any
        stock was held) and the total that follows from them."""
        await self._session.execute(delete(order_lines).where(order_lines.c.order_id == order.id))
        await self._insert_lines(order)
        await self.set_details(order.id, total=order.total)

    async def _insert_lines(self, *added: Order) -> None:
        for order in added:
            self._loaded_warehouses[order.id] = {ln.line_no: ln.warehouse for ln in order.lines}
        lines = [(order.id, ln) for order in added for ln in order.lines]
        if lines:
            await self._session.execute(
                _INSERT_LINES,
                {
                    "orders": [o for o, _ in lines],
                    "lines": [ln.line_no for _, ln in lines],
                    "skus": [ln.sku for _, ln in lines],
                    "qtys": [ln.qty for _, ln in lines],
                    "prices": [ln.unit_price for _, ln in lines],
                    "warehouses": [ln.warehouse for _, ln in lines],
                },
            )

    async def channel_version(self, order_id: uuid.UUID) -> tuple[datetime | None, Any]:
        """The channel's time of the version the order follows, and its customer JSON."""
        row = (
            await self._session.execute(
                select(orders.c.channel_updated_at, orders.c.customer).where(
                    orders.c.id == order_id
                )
            )
        ).one()
        return row.channel_updated_at, row.customer

    async def set_details(self, order_id: uuid.UUID, **values: Any) -> None:
        """Fields outside the aggregate (carrier, tracking number, reasons, times)."""
        await self._session.execute(update(orders).where(orders.c.id == order_id).values(**values))

    # -- read side ------------------------------------------------------------------

    async def view(self, order_id: uuid.UUID) -> dict[str, Any] | None:
        row = (await self._session.execute(select(orders).where(orders.c.id == order_id))).first()
        if row is None:
            return None
        lines = await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id == order_id)
            .order_by(order_lines.c.line_no)
        )
        history = await self._session.execute(
            select(order_transitions)
            .where(order_transitions.c.order_id == order_id)
            .order_by(order_transitions.c.id)
        )
        return {
            **dict(row._mapping),
            "lines": [dict(r._mapping) for r in lines],
            "history": [dict(r._mapping) for r in history],
            **await RoutingRepository(self._session).order_extras(order_id),
            "sla": await SlaRepository(self._session).for_order(order_id),
        }

    async def list(
        self, *, channel: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = select(orders)
        count = select(func.count()).select_from(orders)
        if channel is not None:
            query = query.where(orders.c.channel == channel)
            count = count.where(orders.c.channel == channel)
        if state is not None:
            query = query.where(orders.c.state == state)
            count = count.where(orders.c.state == state)
        rows = await self._session.execute(
            query.order_by(orders.c.created_at.desc(), orders.c.id).limit(limit).offset(offset)
        )
        total = (await self._session.execute(count)).scalar_one()
        return [dict(r._mapping) for r in rows], total
