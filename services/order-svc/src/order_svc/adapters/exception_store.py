"""The exception queue in PostgreSQL: one row per order and cause while it is open."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.tables import order_exceptions, orders

OPEN = "open"
RESOLVED = "resolved"


class ExceptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def open(
        self,
        *,
        exception_id: uuid.UUID,
        order_id: uuid.UUID,
        channel: str,
        cause: str,
        detail: str | None,
        at: datetime,
    ) -> bool:
        """Open an exception; False if the order already has an open one with this cause."""
        row = await self._session.execute(
            pg_insert(order_exceptions)
            .values(
                id=exception_id,
                order_id=order_id,
                channel=channel,
                cause=cause,
                detail=detail,
                state=OPEN,
                opened_at=at,
            )
            .on_conflict_do_nothing(
                index_elements=["order_id", "cause"], index_where=text("state = 'open'")
            )
            .returning(order_exceptions.c.id)
        )
        return row.first() is not None

    async def get(self, exception_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(order_exceptions).where(order_exceptions.c.id == exception_id)
        if lock:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return dict(row._mapping) if row is not None else None

    async def open_for_order(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        """The order's open exceptions, locked (the caller holds the order's lock first)."""
        rows = await self._session.execute(
            select(order_exceptions)
            .where(order_exceptions.c.order_id == order_id, order_exceptions.c.state == OPEN)
            .order_by(order_exceptions.c.opened_at, order_exceptions.c.id)
            .with_for_update()
        )
        return [dict(r._mapping) for r in rows]

    async def resolve(
        self,
        exception_id: uuid.UUID,
        *,
        action: str,
        actor: str,
        note: str | None,
        at: datetime,
    ) -> bool:
        """Close an open exception, recording who did what and why (the audit trail)."""
        row = await self._session.execute(
            update(order_exceptions)
            .where(order_exceptions.c.id == exception_id, order_exceptions.c.state == OPEN)
            .values(state=RESOLVED, resolved_at=at, resolved_by=actor, action=action, note=note)
            .returning(order_exceptions.c.id)
        )
        return row.first() is not None

    # -- read side ----------------------------------------------------------------------

    async def page(
        self,
        *,
        cause: str | None,
        state: str | None,
        channel: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Exceptions, oldest first (the queue's order), with the order's current state."""
        conditions: list[ColumnElement[bool]] = []
        if cause is not None:
            conditions.append(order_exceptions.c.cause == cause)
        if state is not None:
            conditions.append(order_exceptions.c.state == state)
        if channel is not None:
            conditions.append(order_exceptions.c.channel == channel)
        where = and_(True, *conditions)
        rows = await self._session.execute(
            select(order_exceptions, orders.c.state.label("order_state"))
            .select_from(
                order_exceptions.outerjoin(orders, orders.c.id == order_exceptions.c.order_id)
            )
            .where(where)
            .order_by(order_exceptions.c.opened_at, order_exceptions.c.id)
            .limit(limit)
            .offset(offset)
        )
        total = (
            await self._session.execute(
                select(func.count()).select_from(order_exceptions).where(where)
            )
        ).scalar_one()
        return [dict(r._mapping) for r in rows], total

    async def stats(self) -> list[dict[str, Any]]:
        """Per cause: open, resolved, and the oldest open one's time."""
        rows = await self._session.execute(
            select(
                order_exceptions.c.cause,
                func.count().filter(order_exceptions.c.state == OPEN).label("open"),
                func.count().filter(order_exceptions.c.state == RESOLVED).label("resolved"),
                func.min(order_exceptions.c.opened_at)
                .filter(order_exceptions.c.state == OPEN)
                .label("oldest_open_at"),
            )
            .group_by(order_exceptions.c.cause)
            .order_by(order_exceptions.c.cause)
        )
        return [dict(r._mapping) for r in rows]
