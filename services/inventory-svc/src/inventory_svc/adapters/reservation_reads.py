"""Reads of the open reservations for other services (order-svc's consistency check).

Kept apart from :mod:`inventory_svc.adapters.stock_repository`, which owns the writes of
the reservations' life cycle: this module only reads, a page of orders at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_svc.adapters.tables import reservations

#: A reservation line inventory still holds (``closed_at`` is NULL until it is released
#: or shipped).
OPEN = "reserved"


@dataclass(frozen=True)
class HeldLine:
    line_no: int
    sku: str
    qty: int
    warehouse: str


@dataclass(frozen=True)
class HeldOrder:
    """What inventory holds for one order: its open lines, and when they last changed."""

    order_id: uuid.UUID
    channel: str
    lines: tuple[HeldLine, ...]
    reserved_at: datetime
    changed_at: datetime
    #: None once the order is confirmed: its stock is held until it ships.
    expires_at: datetime | None


@dataclass(frozen=True)
class HeldPage:
    orders: list[HeldOrder]
    #: The last order id of the page when more follow (the next page starts after it).
    last: uuid.UUID | None


async def open_reservations(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> HeldPage:
    """Up to ``limit`` orders holding open reservations, by order id after ``after``.

    Keyset pagination by order id (the primary key's first column), so a page costs the
    same at the first and at the last of 50,000 orders, and the lines of one order never
    straddle two pages. Two statements: the page's order ids, then their open lines.
    """
    ids_query = (
        select(reservations.c.order_id)
        .where(reservations.c.state == OPEN)
        .group_by(reservations.c.order_id)
        .order_by(reservations.c.order_id)
        .limit(limit + 1)
    )
    if after is not None:
        ids_query = ids_query.where(reservations.c.order_id > after)
    ids = [row.order_id for row in await session.execute(ids_query)]
    last = ids[limit - 1] if len(ids) > limit else None
    ids = ids[:limit]
    if not ids:
        return HeldPage([], None)
    rows = await session.execute(
        select(
            reservations.c.order_id,
            reservations.c.line_no,
            reservations.c.sku,
            reservations.c.qty,
            reservations.c.warehouse,
            reservations.c.channel,
            reservations.c.created_at,
            reservations.c.expires_at,
            func.coalesce(reservations.c.closed_at, reservations.c.created_at).label("changed_at"),
        )
        .where(and_(reservations.c.order_id.in_(ids), reservations.c.state == OPEN))
        .order_by(reservations.c.order_id, reservations.c.line_no)
    )
    grouped: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.order_id, []).append(row)
    held = []
    for order_id in ids:
        lines = grouped.get(order_id)
        if not lines:  # closed between the two statements: not open any more
            continue
        held.append(
            HeldOrder(
                order_id=order_id,
                channel=lines[0].channel,
                lines=tuple(HeldLine(ln.line_no, ln.sku, ln.qty, ln.warehouse) for ln in lines),
                reserved_at=min(ln.created_at for ln in lines),
                changed_at=max(ln.changed_at for ln in lines),
                expires_at=min(
                    (ln.expires_at for ln in lines if ln.expires_at is not None), default=None
                ),
            )
        )
    return HeldPage(held, last)
