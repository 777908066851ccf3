"""The board's read model in PostgreSQL: projection writes and the board's queries.

Writes are guarded by the time the change happened, so replays and out-of-order
deliveries converge on the latest fact, and are batched per transaction (a few
statements for a whole chunk of events); they never commit (the consumer's unit of work
does, together with the inbox row). Reads aggregate in the database and
page, so the board's answers stay small whatever the number of orders.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, TextClause, and_, case, func, not_, or_, select, text, update
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
from notifier.domain.board import SLA_CLOSED_STATES, SLA_STAGE_ENDS
from notifier.domain.board_changes import (
    ORDER_COLUMNS,
    BoardChanges,
    ExceptionOp,
    ExceptionRaised,
    ExceptionResolved,
    ParkedReleased,
    fold_order,
    is_due,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a list and the size of the whole list."""

    items: list[Row]
    total: int


def _unnest(columns: dict[str, str]) -> str:
    """``unnest(CAST(:a AS t[]), ...) AS v(a, ...)``: one array parameter per column, so
    a whole batch is one statement whose text (and prepared plan) never changes."""
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns.items())
    return f"unnest({arrays}) AS v({', '.join(columns)})"


#: The SQL type of each order column as passed in (routing travels as JSON text).
_ORDER_TYPES: dict[str, str] = {
    "channel": "text",
    "channel_order_id": "text",
    "state": "text",
    "state_changed_at": "timestamptz",
    "state_reason": "text",
    "customer_id": "uuid",
    "currency": "text",
    "total": "numeric",
    "priority": "text",
    "created_at": "timestamptz",
    "credit_degraded": "boolean",
    "credit_reason": "text",
    "credit_degraded_at": "timestamptz",
    "sla_stage": "text",
    "sla_deadline": "timestamptz",
    "sla_status": "text",
    "sla_raised_at": "timestamptz",
    "routing": "text",
}
assert tuple(_ORDER_TYPES) == ORDER_COLUMNS

#: Creates the rows of orders first seen now (blank), locks every row in key order and
#: returns it as stored: a no-op update, so concurrent writers queue behind this one.
_LOCK_ORDERS = text(
    "INSERT INTO board_orders AS o (order_id)"
    " SELECT id FROM unnest(CAST(:ids AS uuid[])) AS t(id) ORDER BY id"
    " ON CONFLICT (order_id) DO UPDATE SET updated_at = o.updated_at"
    " RETURNING o.order_id, "
    + ", ".join(f"o.{c}::text AS {c}" if c == "routing" else f"o.{c}" for c in ORDER_COLUMNS)
)

_WRITE_ORDERS = text(
    "UPDATE board_orders AS o SET "
    + ", ".join(f"{c} = v.{c}::jsonb" if c == "routing" else f"{c} = v.{c}" for c in ORDER_COLUMNS)
    + ", updated_at = now() FROM "
    + _unnest({"order_id": "uuid", **_ORDER_TYPES})
    + " WHERE o.order_id = v.order_id"
)

_COUNT_CREATED = text(
    "INSERT INTO board_throughput AS t (minute, orders) SELECT v.minute, v.orders FROM "
    + _unnest({"minute": "timestamptz", "orders": "int"})
    + " ON CONFLICT (minute) DO UPDATE SET orders = t.orders + excluded.orders"
)

_LOW_STOCK = text(
    "INSERT INTO board_low_stock AS s (sku, warehouse, available, safety_stock, raised_at)"
    " SELECT v.sku, v.warehouse, v.available, v.safety_stock, v.at FROM "
    + _unnest(
        {
            "sku": "text",
            "warehouse": "text",
            "available": "int",
            "safety_stock": "int",
            "at": "timestamptz",
        }
    )
    + " ON CONFLICT (sku) DO UPDATE SET warehouse = excluded.warehouse,"
    " available = excluded.available, safety_stock = excluded.safety_stock,"
    " raised_at = excluded.raised_at WHERE s.raised_at <= excluded.raised_at"
)

_STOCK_LEVELS = text(
    "INSERT INTO board_stock_levels AS s (sku, warehouse, available, changed_at)"
    " SELECT v.sku, v.warehouse, v.available, v.at FROM "
    + _unnest({"sku": "text", "warehouse": "text", "available": "int", "at": "timestamptz"})
    + " ON CONFLICT (sku, warehouse) DO UPDATE SET available = excluded.available,"
    " changed_at = excluded.changed_at WHERE s.changed_at <= excluded.changed_at"
)

_CHANNEL_PAUSES = text(
    "INSERT INTO board_channel_pauses AS p (sku, channel, paused, reason, changed_at)"
    " SELECT v.sku, v.channel, v.paused, v.reason, v.at FROM "
    + _unnest(
        {
            "sku": "text",
            "channel": "text",
            "paused": "boolean",
            "reason": "text",
            "at": "timestamptz",
        }
    )
    + " ON CONFLICT (sku, channel) DO UPDATE SET paused = excluded.paused,"
    " reason = excluded.reason, changed_at = excluded.changed_at"
    " WHERE p.changed_at <= excluded.changed_at"
)


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Rows to one list per column: the array parameters of an ``unnest`` statement."""
    return {name: [row[name] for row in rows] for name in names}


def _latest_rows(
    kept: dict[Any, tuple[datetime, dict[str, Any]]], key_names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Coalesced stock facts as rows in key order (a stable lock order)."""
    rows = []
    for key, (at, values) in sorted(kept.items(), key=lambda item: item[0]):
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(key_names, keys, strict=True)), **values, "at": at})
    return rows


class BoardProjection:
    """Writes what a transaction's events told the board (inside the caller's transaction).

    A few set-based statements per transaction whatever the number of events: the
    orders touched are locked and read in one statement, folded in memory with the same
    guards the per-event upserts had (:func:`notifier.domain.board_changes.fold_order`)
    and written back in one; the stock tables get one guarded upsert each.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def apply(self, changes: BoardChanges) -> None:
        if changes.orders:
            await self._orders(changes)
        if changes.low_stock:
            await self._upsert(_LOW_STOCK, _latest_rows(changes.low_stock, ("sku",)))
        if changes.stock_levels:
            await self._upsert(
                _STOCK_LEVELS, _latest_rows(changes.stock_levels, ("sku", "warehouse"))
            )
        if changes.channel_pauses:
            await self._upsert(
                _CHANNEL_PAUSES, _latest_rows(changes.channel_pauses, ("sku", "channel"))
            )

    async def _upsert(self, statement: TextClause, rows: list[dict[str, Any]]) -> None:
        await self._session.execute(statement, _columns(rows, tuple(rows[0])))

    async def _orders(self, changes: BoardChanges) -> None:
        """Lock and read the orders, fold their events, write the changed rows, count
        the new ones, then open and close their exceptions in the order told."""
        ids = sorted(changes.orders)
        stored = await self._session.execute(_LOCK_ORDERS, {"ids": ids})
        rows: dict[uuid.UUID, Any] = {r["order_id"]: r for r in stored.mappings()}
        written: list[dict[str, Any]] = []
        minutes: Counter[datetime] = Counter()
        for order_id in ids:
            fold = fold_order(dict(rows[order_id]), changes.orders[order_id])
            if fold.changed:
                written.append({"order_id": order_id, **fold.row})
            minutes.update(fold.created_minutes)
        if written:
            await self._session.execute(
                _WRITE_ORDERS, _columns(written, ("order_id", *ORDER_COLUMNS))
            )
        if minutes:
            counted = sorted(minutes.items())
            await self._session.execute(
                _COUNT_CREATED,
                {"minute": [m for m, _ in counted], "orders": [n for _, n in counted]},
            )
        for op in changes.exceptions:
            if is_due(op):
                await self._exception(op)

    async def _exception(self, op: ExceptionOp) -> None:
        if isinstance(op, ExceptionRaised):
            await self._exception_raised(op)
        elif isinstance(op, ExceptionResolved):
            await self._exception_resolved(op)
        else:
            await self._parked_released(op)

    async def _parked_released(self, op: ParkedReleased) -> None:
        """The order left the exception state: the exception that parked it is over."""
        await self._session.execute(
            update(board_exceptions)
            .where(
                board_exceptions.c.order_id == op.order_id,
                board_exceptions.c.parks_order,
                board_exceptions.c.resolved_at.is_(None),
                board_exceptions.c.raised_at <= op.changed_at,
            )
            .values(resolved_at=op.changed_at, resolution=f"moved to {op.to_state}")
        )

    async def _exception_raised(self, op: ExceptionRaised) -> None:
        """Open (or re-open, if raised after its resolution) the order's exception."""
        t = board_exceptions.c
        stmt = pg_insert(board_exceptions).values(
            order_id=op.order_id,
            cause=op.cause,
            exception_id=op.exception_id,
            channel=op.channel,
            detail=op.detail,
            raised_at=op.raised_at,
            parks_order=op.parks_order,
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

    async def _exception_resolved(self, op: ExceptionResolved) -> None:
        """Close the order's exception of ``cause`` (a late raise will not re-open it)."""
        t = board_exceptions.c
        stmt = pg_insert(board_exceptions).values(
            order_id=op.order_id,
            cause=op.cause,
            exception_id=op.exception_id,
            channel=op.channel,
            raised_at=op.resolved_at,
            parks_order=False,
            resolved_at=op.resolved_at,
            resolution=op.resolution,
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.order_id, t.cause],
                set_={"resolved_at": stmt.excluded.resolved_at, "resolution": op.resolution},
                where=and_(t.resolved_at.is_(None), t.raised_at <= stmt.excluded.resolved_at),
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
