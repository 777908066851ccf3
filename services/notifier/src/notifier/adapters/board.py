"""The board's read model in PostgreSQL: projection writes and the board's queries.

Writes are single upserts guarded by the time the change happened, so replays and
out-of-order deliveries converge on the latest fact; they never commit (the consumer's
unit of work does, together with the inbox row). Reads aggregate in the database and
page, so the board's answers stay small whatever the number of orders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters.board_tables import (
    board_channel_pauses,
    board_exceptions,
    board_low_stock,
    board_orders,
    board_stock_levels,
    board_throughput,
)
from notifier.adapters.tables import alerts, events
from notifier.domain.board import EXCEPTION_STATE, SLA_CLOSED_STATES, SLA_STAGE_ENDS, minute_of

Row = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a list and the size of the whole list."""

    items: list[Row]
    total: int


class BoardProjection:
    """Applies what an event says to the board's tables (inside the caller's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _upsert_order(
        self,
        order_id: uuid.UUID,
        values: dict[str, Any],
        *,
        where: ColumnElement[bool] | None = None,
    ) -> bool:
        """Insert the order's row with ``values`` or update them (only ``where`` holds).

        True when the row was inserted or updated.
        """
        stmt = pg_insert(board_orders).values(order_id=order_id, **values)
        changes: dict[str, Any] = {k: stmt.excluded[k] for k in values}
        if "channel" in changes:  # the first event that knows the channel sets it
            changes["channel"] = func.coalesce(board_orders.c.channel, stmt.excluded.channel)
        changes["updated_at"] = func.now()
        upsert = stmt.on_conflict_do_update(
            index_elements=[board_orders.c.order_id], set_=changes, where=where
        ).returning(board_orders.c.order_id)
        return (await self._session.execute(upsert)).first() is not None

    async def order_created(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        channel_order_id: str,
        currency: str,
        total: Decimal,
        priority: str,
        created_at: datetime,
    ) -> bool:
        """Record a new order; counts it in its minute's throughput the first time only."""
        stmt = pg_insert(board_orders).values(
            order_id=order_id,
            channel=channel,
            channel_order_id=channel_order_id,
            state="received",
            currency=currency,
            total=total,
            priority=priority,
            created_at=created_at,
        )
        first = (
            await self._session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[board_orders.c.order_id],
                    set_={
                        "channel": stmt.excluded.channel,
                        "channel_order_id": stmt.excluded.channel_order_id,
                        # A transition seen first already knows a later state.
                        "state": func.coalesce(board_orders.c.state, literal("received")),
                        "currency": stmt.excluded.currency,
                        "total": stmt.excluded.total,
                        "priority": stmt.excluded.priority,
                        "created_at": stmt.excluded.created_at,
                        "updated_at": func.now(),
                    },
                    where=board_orders.c.created_at.is_(None),
                ).returning(board_orders.c.order_id)
            )
        ).first() is not None
        if first:
            minute = pg_insert(board_throughput).values(minute=minute_of(created_at), orders=1)
            await self._session.execute(
                minute.on_conflict_do_update(
                    index_elements=[board_throughput.c.minute],
                    set_={"orders": board_throughput.c.orders + 1},
                )
            )
        return first

    async def state_changed(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        from_state: str | None,
        to_state: str,
        reason: str | None,
        changed_at: datetime,
        cause: str | None,
    ) -> bool:
        """Move the order to ``to_state`` unless a later transition is already known.

        ``cause`` (for a move into the exception state) opens the exception that parks
        the order; leaving the exception state resolves it. Returns whether this
        transition is now the order's latest.
        """
        latest = await self._upsert_order(
            order_id,
            {
                "channel": channel,
                "state": to_state,
                "state_changed_at": changed_at,
                "state_reason": reason,
            },
            where=or_(
                board_orders.c.state_changed_at.is_(None),
                board_orders.c.state_changed_at <= changed_at,
            ),
        )
        if not latest:
            return False
        if to_state == EXCEPTION_STATE and cause is not None:
            await self.exception_raised(
                order_id=order_id,
                cause=cause,
                exception_id=None,
                channel=channel,
                detail=reason,
                raised_at=changed_at,
                parks_order=True,
            )
        elif from_state == EXCEPTION_STATE:
            await self._session.execute(
                update(board_exceptions)
                .where(
                    board_exceptions.c.order_id == order_id,
                    board_exceptions.c.parks_order,
                    board_exceptions.c.resolved_at.is_(None),
                    board_exceptions.c.raised_at <= changed_at,
                )
                .values(resolved_at=changed_at, resolution=f"moved to {to_state}")
            )
        return True

    async def exception_raised(
        self,
        *,
        order_id: uuid.UUID,
        cause: str,
        exception_id: uuid.UUID | None,
        channel: str,
        detail: str | None,
        raised_at: datetime,
        parks_order: bool = False,
    ) -> None:
        """Open (or re-open, if raised after its resolution) the order's exception."""
        await self._upsert_order(order_id, {"channel": channel})
        t = board_exceptions.c
        stmt = pg_insert(board_exceptions).values(
            order_id=order_id,
            cause=cause,
            exception_id=exception_id,
            channel=channel,
            detail=detail,
            raised_at=raised_at,
            parks_order=parks_order,
        )
        new = stmt.excluded
        still_open = t.resolved_at.is_(None)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.order_id, t.cause],
                set_={
                    "exception_id": func.coalesce(new.exception_id, t.exception_id),
                    "detail": func.coalesce(new.detail, t.detail),
                    # The same open exception told twice (state and event): keep the first.
                    "raised_at": case(
                        (still_open, func.least(t.raised_at, new.raised_at)), else_=new.raised_at
                    ),
                    "parks_order": case(
                        (still_open, t.parks_order | new.parks_order), else_=new.parks_order
                    ),
                    "resolved_at": None,
                    "resolution": None,
                },
                where=or_(still_open, t.resolved_at < new.raised_at),
            )
        )

    async def exception_resolved(
        self,
        *,
        order_id: uuid.UUID,
        cause: str,
        exception_id: uuid.UUID,
        channel: str,
        resolution: str,
        resolved_at: datetime,
    ) -> None:
        """Close the order's exception of ``cause`` (a late raise will not re-open it)."""
        await self._upsert_order(order_id, {"channel": channel})
        t = board_exceptions.c
        stmt = pg_insert(board_exceptions).values(
            order_id=order_id,
            cause=cause,
            exception_id=exception_id,
            channel=channel,
            raised_at=resolved_at,
            parks_order=False,
            resolved_at=resolved_at,
            resolution=resolution,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.order_id, t.cause],
                set_={"resolved_at": stmt.excluded.resolved_at, "resolution": resolution},
                where=and_(t.resolved_at.is_(None), t.raised_at <= stmt.excluded.resolved_at),
            )
        )

    async def order_routed(
        self, *, order_id: uuid.UUID, channel: str, routing: dict[str, Any]
    ) -> None:
        await self._upsert_order(order_id, {"channel": channel, "routing": routing})

    async def customer_resolved(
        self, *, order_id: uuid.UUID, channel: str, customer_id: uuid.UUID
    ) -> None:
        await self._upsert_order(order_id, {"channel": channel, "customer_id": customer_id})

    async def credit_degraded(
        self, *, order_id: uuid.UUID, channel: str, reason: str, degraded_at: datetime
    ) -> None:
        await self._upsert_order(
            order_id,
            {
                "channel": channel,
                "credit_degraded": True,
                "credit_reason": reason,
                "credit_degraded_at": degraded_at,
            },
        )

    async def sla(
        self,
        *,
        order_id: uuid.UUID,
        channel: str,
        stage: str,
        deadline: datetime,
        status: str,
        raised_at: datetime,
    ) -> None:
        """The order's most recent SLA warning (at risk or breached) for its stage."""
        await self._upsert_order(
            order_id,
            {
                "channel": channel,
                "sla_stage": stage,
                "sla_deadline": deadline,
                "sla_status": status,
                "sla_raised_at": raised_at,
            },
            where=or_(
                board_orders.c.sla_raised_at.is_(None), board_orders.c.sla_raised_at <= raised_at
            ),
        )

    async def stock_low(
        self,
        *,
        sku: str,
        warehouse: str | None,
        available: int,
        safety_stock: int,
        raised_at: datetime,
    ) -> None:
        stmt = pg_insert(board_low_stock).values(
            sku=sku,
            warehouse=warehouse,
            available=available,
            safety_stock=safety_stock,
            raised_at=raised_at,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[board_low_stock.c.sku],
                set_={k: stmt.excluded[k] for k in ("warehouse", "available", "safety_stock")}
                | {"raised_at": stmt.excluded.raised_at},
                where=board_low_stock.c.raised_at <= stmt.excluded.raised_at,
            )
        )

    async def stock_level(
        self, *, sku: str, warehouse: str, available: int, changed_at: datetime
    ) -> None:
        stmt = pg_insert(board_stock_levels).values(
            sku=sku, warehouse=warehouse, available=available, changed_at=changed_at
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[board_stock_levels.c.sku, board_stock_levels.c.warehouse],
                set_={"available": stmt.excluded.available, "changed_at": stmt.excluded.changed_at},
                where=board_stock_levels.c.changed_at <= stmt.excluded.changed_at,
            )
        )

    async def channel_sales(
        self, *, sku: str, channel: str, paused: bool, reason: str, changed_at: datetime
    ) -> None:
        stmt = pg_insert(board_channel_pauses).values(
            sku=sku, channel=channel, paused=paused, reason=reason, changed_at=changed_at
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[board_channel_pauses.c.sku, board_channel_pauses.c.channel],
                set_={
                    "paused": stmt.excluded.paused,
                    "reason": stmt.excluded.reason,
                    "changed_at": stmt.excluded.changed_at,
                },
                where=board_channel_pauses.c.changed_at <= stmt.excluded.changed_at,
            )
        )


class BoardQueries:
    """What the board shows, aggregated and paged in the database."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def fingerprint(self) -> tuple[int, int]:
        """Changes whenever the board may have: a new event, or an alert changed state."""
        row = (
            await self._session.execute(
                select(
                    select(func.coalesce(func.max(events.c.seq), 0)).scalar_subquery(),
                    select(func.count())
                    .select_from(alerts)
                    .where(alerts.c.state == "open")
                    .scalar_subquery(),
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def counts(self) -> list[tuple[str, str, int]]:
        """Orders per (state, channel): one GROUP BY over the (state, channel) index."""
        channel = func.coalesce(board_orders.c.channel, "unknown")
        rows = await self._session.execute(
            select(board_orders.c.state, channel, func.count())
            .where(board_orders.c.state.is_not(None))
            .group_by(board_orders.c.state, channel)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def throughput(self, since: datetime) -> dict[datetime, int]:
        rows = await self._session.execute(
            select(board_throughput.c.minute, board_throughput.c.orders).where(
                board_throughput.c.minute >= since
            )
        )
        return {r.minute: int(r.orders) for r in rows}

    async def sla(self, *, limit: int, offset: int) -> Page:
        """Orders with an SLA warning whose SLA still runs, nearest deadline first."""
        o = board_orders.c
        # The SQL form of domain.board.sla_running (the test of both pins them together).
        met = or_(
            o.state.in_(sorted(SLA_CLOSED_STATES)),
            *(
                and_(o.sla_stage == stage, o.state.in_(sorted(ends)))
                for stage, ends in SLA_STAGE_ENDS.items()
            ),
        )
        running = and_(o.sla_deadline.is_not(None), or_(o.state.is_(None), not_(met)))
        cols = [
            o.order_id,
            o.channel,
            o.channel_order_id,
            o.state,
            o.sla_stage,
            o.sla_deadline,
            o.sla_status,
        ]
        return await self._page(
            select(*cols).where(running).order_by(o.sla_deadline, o.order_id),
            select(func.count()).select_from(board_orders).where(running),
            limit=limit,
            offset=offset,
        )

    async def exceptions(self, *, cause: str | None, limit: int, offset: int) -> Page:
        """Open exceptions, oldest first, with their order's state."""
        e, o = board_exceptions.c, board_orders.c
        conditions: list[ColumnElement[bool]] = [e.resolved_at.is_(None)]
        if cause:
            conditions.append(e.cause == cause)
        query = (
            select(
                e.order_id,
                e.cause,
                e.exception_id,
                e.channel,
                e.detail,
                e.raised_at,
                o.state,
                o.channel_order_id,
            )
            .select_from(board_exceptions.outerjoin(board_orders, o.order_id == e.order_id))
            .where(*conditions)
            .order_by(e.raised_at, e.order_id, e.cause)
        )
        count = select(func.count()).select_from(board_exceptions).where(*conditions)
        return await self._page(query, count, limit=limit, offset=offset)

    async def exception_stats(self) -> dict[str, int]:
        """Open exceptions per cause."""
        e = board_exceptions.c
        rows = await self._session.execute(
            select(e.cause, func.count())
            .where(e.resolved_at.is_(None))
            .group_by(e.cause)
            .order_by(e.cause)
        )
        return {r[0]: int(r[1]) for r in rows}

    async def credit_degraded(self, *, limit: int, offset: int) -> Page:
        """Orders that went on without a credit answer, newest first."""
        o = board_orders.c
        query = (
            select(
                o.order_id,
                o.channel,
                o.channel_order_id,
                o.state,
                o.credit_reason,
                o.credit_degraded_at,
            )
            .where(o.credit_degraded)
            .order_by(o.credit_degraded_at.desc(), o.order_id)
        )
        count = select(func.count()).select_from(board_orders).where(o.credit_degraded)
        return await self._page(query, count, limit=limit, offset=offset)

    async def low_stock(self, *, limit: int) -> list[Row]:
        """SKUs below safety stock: listed until their known stock is back at it."""
        low, lv = board_low_stock.c, board_stock_levels.c
        now_available = (
            select(func.sum(lv.available))
            .where(lv.sku == low.sku, lv.changed_at >= low.raised_at)
            .correlate(board_low_stock)
            .scalar_subquery()
        )
        rows = await self._session.execute(
            select(low.sku, low.warehouse, low.available, low.safety_stock, low.raised_at)
            .where(or_(now_available.is_(None), now_available < low.safety_stock))
            .order_by(low.raised_at.desc(), low.sku)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def paused_channels(self, *, limit: int) -> list[Row]:
        p = board_channel_pauses.c
        rows = await self._session.execute(
            select(p.sku, p.channel, p.reason, p.changed_at)
            .where(p.paused)
            .order_by(p.changed_at.desc(), p.sku, p.channel)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def open_alerts(self, *, limit: int) -> Page:
        a = alerts.c
        query = (
            select(a.id, a.alert_type, a.severity, a.subject, a.message, a.raised_at, a.state)
            .where(a.state == "open")
            .order_by(a.raised_at.desc(), a.id)
        )
        count = select(func.count()).select_from(alerts).where(a.state == "open")
        return await self._page(query, count, limit=limit, offset=0)

    async def order(self, order_id: uuid.UUID) -> Row | None:
        row = (
            await self._session.execute(
                select(board_orders).where(board_orders.c.order_id == order_id)
            )
        ).first()
        return dict(row._mapping) if row is not None else None

    async def order_exceptions(self, order_id: uuid.UUID) -> list[Row]:
        rows = await self._session.execute(
            select(board_exceptions)
            .where(board_exceptions.c.order_id == order_id)
            .order_by(board_exceptions.c.raised_at)
        )
        return [dict(r._mapping) for r in rows]

    async def order_events(self, order_id: uuid.UUID, *, limit: int) -> list[Row]:
        """The order's events as notifier saw them, in the order they happened."""
        ev = events.c
        rows = await self._session.execute(
            select(ev.event_id, ev.event_type, ev.producer, ev.occurred_at, ev.payload)
            .where(ev.key == str(order_id))
            .order_by(ev.occurred_at, ev.seq)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def _page(self, query: Any, count: Any, *, limit: int, offset: int) -> Page:
        rows = await self._session.execute(query.limit(limit).offset(offset))
        total = (await self._session.execute(count)).scalar_one()
        return Page([dict(r._mapping) for r in rows], int(total))
