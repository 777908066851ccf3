"""Order persistence: the aggregate in, the aggregate out, and read views for the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.adapters.sla_store import SlaRepository
from order_svc.adapters.tables import order_lines, order_transitions, orders
from order_svc.domain.order import Line, Order, OrderState


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        #: Order id -> each line's warehouse as loaded: ``save`` writes only the lines
        #: whose warehouse changed (most saves change none).
        self._loaded_warehouses: dict[uuid.UUID, dict[int, str | None]] = {}

    async def exists(self, order_id: uuid.UUID) -> bool:
        row = await self._session.execute(select(orders.c.id).where(orders.c.id == order_id))
        return row.first() is not None

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
        row = (
            await self._session.execute(
                select(orders).where(orders.c.id == order_id).with_for_update()
            )
        ).first()
        if row is None:
            return None
        lines = await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id == order_id)
            .order_by(order_lines.c.line_no)
        )
        loaded = [Line(r.line_no, r.sku, r.qty, r.unit_price, r.warehouse) for r in lines]
        self._loaded_warehouses[row.id] = {line.line_no: line.warehouse for line in loaded}
        return Order(
            id=row.id,
            channel=row.channel,
            channel_order_id=row.channel_order_id,
            state=OrderState(row.state),
            lines=loaded,
            currency=row.currency,
            priority=row.priority,
            customer_id=row.customer_id,
            platform_user_id=(row.customer or {}).get("platform_user_id"),
            exception_reason=row.exception_reason,
            credit_degraded=row.credit_degraded,
            paid_at=row.paid_at,
        )

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

    async def _flush_transitions(self, order: Order) -> None:
        if order.pending:
            await self._session.execute(
                insert(order_transitions),
                [
                    {
                        "order_id": order.id,
                        "from_state": t.from_state,
                        "to_state": t.to_state,
                        "actor": t.actor,
                        "reason": t.reason,
                        "at": t.at,
                    }
                    for t in order.pending
                ],
            )
            order.pending.clear()

    async def replace_lines(self, order: Order) -> None:
        """Store the order's lines as they are now (a channel changed them before any
        stock was held) and the total that follows from them."""
        await self._session.execute(delete(order_lines).where(order_lines.c.order_id == order.id))
        await self._insert_lines(order)
        await self.set_details(order.id, total=order.total)

    async def _insert_lines(self, order: Order) -> None:
        self._loaded_warehouses[order.id] = {line.line_no: line.warehouse for line in order.lines}
        await self._session.execute(
            insert(order_lines),
            [
                {
                    "order_id": order.id,
                    "line_no": ln.line_no,
                    "sku": ln.sku,
                    "qty": ln.qty,
                    "unit_price": ln.unit_price,
                    "warehouse": ln.warehouse,
                }
                for ln in order.lines
            ],
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
