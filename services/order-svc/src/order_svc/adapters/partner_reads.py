"""What a sales channel may read of its own orders: a narrow projection (no customer,
address, notes or internal routing), by the channel's own order id or newest first."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from order_svc.adapters.tables import order_lines, orders

#: The only order columns a partner sees; anything personal stays out by construction.
PARTNER_COLUMNS = (
    orders.c.id,
    orders.c.channel,
    orders.c.channel_order_id,
    orders.c.state,
    orders.c.currency,
    orders.c.total,
    orders.c.carrier,
    orders.c.tracking_number,
    orders.c.created_at,
    orders.c.updated_at,
    orders.c.paid_at,
    orders.c.shipped_at,
    orders.c.delivered_at,
    orders.c.cancelled_at,
    orders.c.refunded_at,
)
LINE_COLUMNS = (
    order_lines.c.order_id,
    order_lines.c.line_no,
    order_lines.c.sku,
    order_lines.c.qty,
    order_lines.c.unit_price,
)


class PartnerOrderReads:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def one(self, channel: str, channel_order_id: str) -> dict[str, Any] | None:
        """The channel's order by the channel's own id (unique per channel)."""
        row = (
            await self._session.execute(
                select(*PARTNER_COLUMNS).where(
                    orders.c.channel == channel, orders.c.channel_order_id == channel_order_id
                )
            )
        ).first()
        if row is None:
            return None
        return (await self._with_lines([dict(row._mapping)]))[0]

    async def page(
        self,
        channel: str,
        *,
        state: str | None,
        updated_since: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """The channel's orders, newest first, and how many match in all."""
        query: Select[Any] = select(*PARTNER_COLUMNS).where(orders.c.channel == channel)
        count: Select[Any] = (
            select(func.count()).select_from(orders).where(orders.c.channel == channel)
        )
        if state is not None:
            query = query.where(orders.c.state == state)
            count = count.where(orders.c.state == state)
        if updated_since is not None:
            query = query.where(orders.c.updated_at >= updated_since)
            count = count.where(orders.c.updated_at >= updated_since)
        rows = await self._session.execute(
            query.order_by(orders.c.created_at.desc(), orders.c.id).limit(limit).offset(offset)
        )
        total = (await self._session.execute(count)).scalar_one()
        return await self._with_lines([dict(r._mapping) for r in rows]), int(total)

    async def _with_lines(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach every order's lines with one query for the whole page."""
        if not found:
            return found
        ids: list[uuid.UUID] = [o["id"] for o in found]
        rows = await self._session.execute(
            select(*LINE_COLUMNS)
            .where(order_lines.c.order_id.in_(ids))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        )
        lines: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            lines[r.order_id].append(dict(r._mapping))
        return [{**o, "lines": lines[o["id"]]} for o in found]
