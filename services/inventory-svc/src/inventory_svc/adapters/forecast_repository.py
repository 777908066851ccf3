"""Persistence of the forecast side: sales history, promotions, supply, cached forecasts
and replenishment suggestions. Runs inside the caller's unit of work; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, func, select, true, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_svc.adapters.forecast_tables import (
    forecasts,
    promotions,
    replenishment_suggestions,
    sales_daily,
    sales_lines,
    sku_supply,
)
from inventory_svc.adapters.tables import stock


@dataclass(frozen=True)
class SoldLine:
    line_no: int
    sku: str
    warehouse: str
    qty: int


class ForecastRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- sales history ---------------------------------------------------------------------

    async def record_sale(
        self, order_id: uuid.UUID, channel: str, day: date, lines: Iterable[SoldLine]
    ) -> int:
        """Record an order's reserved lines once (a redelivery or repeat adds nothing)."""
        values = [
            {
                "order_id": order_id,
                "line_no": line.line_no,
                "sku": line.sku,
                "warehouse": line.warehouse,
                "channel": channel,
                "day": day,
                "qty": line.qty,
            }
            for line in lines
        ]
        if not values:
            return 0
        result = await self._session.execute(
            pg_insert(sales_lines)
            .values(values)
            .on_conflict_do_nothing()
            .returning(sales_lines.c.line_no)
        )
        return len(result.all())

    async def cancel_sale(self, order_id: uuid.UUID) -> int:
        """The order's demand did not happen: its lines no longer count (once)."""
        result = await self._session.execute(
            update(sales_lines)
            .where(and_(sales_lines.c.order_id == order_id, sales_lines.c.cancelled.is_(False)))
            .values(cancelled=True)
            .returning(sales_lines.c.line_no)
        )
        return len(result.all())

    async def import_daily(self, rows: list[dict[str, Any]], operator: str) -> int:
        """Set imported daily demand (replacing what an earlier import said for that day)."""
        if not rows:
            return 0
        stmt = pg_insert(sales_daily).values([{**row, "imported_by": operator} for row in rows])
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku", "warehouse", "channel", "day"],
            set_={
                "qty": stmt.excluded.qty,
                "imported_by": stmt.excluded.imported_by,
                "updated_at": func.now(),
            },
        )
        await self._session.execute(stmt)
        return len(rows)

    def _demand(self, sku: str, warehouse: str | None, since: date | None) -> Any:
        """(day, channel, warehouse, qty) rows of live and imported demand of ``sku``."""
        live = select(
            sales_lines.c.day,
            sales_lines.c.channel,
            sales_lines.c.warehouse,
            sales_lines.c.qty,
        ).where(and_(sales_lines.c.sku == sku, sales_lines.c.cancelled.is_(False)))
        imported = select(
            sales_daily.c.day, sales_daily.c.channel, sales_daily.c.warehouse, sales_daily.c.qty
        ).where(sales_daily.c.sku == sku)
        if warehouse is not None:
            live = live.where(sales_lines.c.warehouse == warehouse)
            imported = imported.where(sales_daily.c.warehouse == warehouse)
        if since is not None:
            live = live.where(sales_lines.c.day >= since)
            imported = imported.where(sales_daily.c.day >= since)
        return union_all(live, imported).subquery()

    async def daily_demand(
        self, sku: str, warehouse: str | None, since: date, until: date
    ) -> dict[date, int]:
        """Units per day of ``sku`` (all channels; one warehouse or all) in [since, until]."""
        demand = self._demand(sku, warehouse, since)
        rows = await self._session.execute(
            select(demand.c.day, func.sum(demand.c.qty))
            .where(demand.c.day <= until)
            .group_by(demand.c.day)
        )
        return {r[0]: int(r[1]) for r in rows}

    async def first_sale_day(self, sku: str, warehouse: str | None) -> date | None:
        demand = self._demand(sku, warehouse, None)
        value: date | None = await self._session.scalar(select(func.min(demand.c.day)))
        return value

    async def demand_shares(
        self, sku: str, warehouse: str | None, since: date, by: str
    ) -> dict[str, float]:
        """Each channel's (``by="channel"``) or warehouse's share of the demand since ``since``."""
        demand = self._demand(sku, warehouse, since)
        column = demand.c[by]
        rows = (
            await self._session.execute(select(column, func.sum(demand.c.qty)).group_by(column))
        ).all()
        total = sum(int(r[1]) for r in rows)
        return {r[0]: int(r[1]) / total for r in rows} if total else {}

    async def sku_warehouses(self, sku: str) -> set[str]:
        """Warehouses that hold (or held) the SKU or sold it."""
        rows = await self._session.execute(
            union_all(
                select(stock.c.warehouse).where(stock.c.sku == sku),
                select(sales_lines.c.warehouse).where(sales_lines.c.sku == sku),
                select(sales_daily.c.warehouse).where(sales_daily.c.sku == sku),
            )
        )
        return {r[0] for r in rows}

    async def stocked_pairs(self, warehouse: str | None) -> list[tuple[str, str]]:
        """(sku, warehouse) pairs with a stock row or any sales, in order."""
        queries = [
            select(table.c.sku, table.c.warehouse).where(
                table.c.warehouse == warehouse if warehouse is not None else true()
            )
            for table in (stock, sales_lines, sales_daily)
        ]
        pairs = union_all(*queries).subquery()
        rows = await self._session.execute(
            select(pairs.c.sku, pairs.c.warehouse)
            .distinct()
            .order_by(pairs.c.sku, pairs.c.warehouse)
        )
        return [(r[0], r[1]) for r in rows]

    # -- promotions ------------------------------------------------------------------------

    async def add_promotion(self, values: dict[str, Any]) -> dict[str, Any]:
        row = (
            await self._session.execute(pg_insert(promotions).values(values).returning(promotions))
        ).one()
        return dict(row._mapping)

    async def promotions(
        self, sku: str | None = None, since: date | None = None, until: date | None = None
    ) -> list[dict[str, Any]]:
        """Promotions (of ``sku``) overlapping [since, until], by start date."""
        query = select(promotions)
        if sku is not None:
            query = query.where(promotions.c.skus.contains([sku]))
        if since is not None:
            query = query.where(promotions.c.end_date >= since)
        if until is not None:
            query = query.where(promotions.c.start_date <= until)
        rows = await self._session.execute(query.order_by(promotions.c.start_date, promotions.c.id))
        return [dict(r._mapping) for r in rows]

    # -- supply ----------------------------------------------------------------------------

    async def get_supply(self, sku: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(select(sku_supply).where(sku_supply.c.sku == sku))
        ).first()
        return dict(row._mapping) if row else None

    async def put_supply(
        self, sku: str, lead_time_days: int, on_order: dict[str, int], operator: str
    ) -> dict[str, Any]:
        values = {"lead_time_days": lead_time_days, "on_order": on_order, "updated_by": operator}
        stmt = pg_insert(sku_supply).values(sku=sku, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku"], set_={**values, "updated_at": func.now()}
        )
        row = (await self._session.execute(stmt.returning(sku_supply))).one()
        return dict(row._mapping)

    # -- cached forecasts ------------------------------------------------------------------

    async def get_forecast(self, sku: str, warehouse: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(forecasts).where(
                    and_(forecasts.c.sku == sku, forecasts.c.warehouse == warehouse)
                )
            )
        ).first()
        return dict(row._mapping) if row else None

    async def put_forecast(self, values: dict[str, Any]) -> None:
        stmt = pg_insert(forecasts).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku", "warehouse"],
            set_={k: stmt.excluded[k] for k in values if k not in ("sku", "warehouse")},
        )
        await self._session.execute(stmt)

    async def drop_forecasts(self, skus: Iterable[str]) -> None:
        """Forget cached forecasts of ``skus`` (their promotions changed)."""
        await self._session.execute(forecasts.delete().where(forecasts.c.sku.in_(list(skus))))

    # -- replenishment suggestions ---------------------------------------------------------

    async def lock_suggestion(self, sku: str, warehouse: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(replenishment_suggestions)
                .where(
                    and_(
                        replenishment_suggestions.c.sku == sku,
                        replenishment_suggestions.c.warehouse == warehouse,
                    )
                )
                .with_for_update()
            )
        ).first()
        return dict(row._mapping) if row else None

    async def put_suggestion(self, values: dict[str, Any]) -> None:
        stmt = pg_insert(replenishment_suggestions).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku", "warehouse"],
            set_={k: stmt.excluded[k] for k in values if k not in ("sku", "warehouse")},
        )
        await self._session.execute(stmt)

    async def available_by_warehouse(self, sku: str) -> dict[str, int]:
        rows = await self._session.execute(
            select(stock.c.warehouse, stock.c.on_hand - stock.c.reserved).where(stock.c.sku == sku)
        )
        return {r[0]: int(r[1]) for r in rows}
