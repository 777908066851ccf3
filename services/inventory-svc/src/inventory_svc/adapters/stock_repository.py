"""Stock pool persistence: guarded updates and the ledger row of every change.

Every change of ``stock`` goes through :meth:`StockRepository._change`, which writes the
ledger row with the resulting numbers in the same statement batch, so the ledger's
deltas always sum to the stock row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_svc.adapters.tables import ledger, reservations, skus, stock, warehouses
from inventory_svc.domain.allocation import Allocation, Availability


@dataclass(frozen=True)
class StockLevel:
    sku: str
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Change:
    """What moved and why, for the ledger."""

    kind: str
    reason: str
    operator: str
    order_id: uuid.UUID | None = None


class StockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- master data ----------------------------------------------------------------

    async def add_warehouse(self, values: dict[str, Any]) -> bool:
        result = await self._session.execute(
            pg_insert(warehouses)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(warehouses.c.code)
        )
        return result.first() is not None

    async def list_warehouses(self) -> list[dict[str, Any]]:
        rows = await self._session.execute(select(warehouses).order_by(warehouses.c.code))
        return [dict(r._mapping) for r in rows]

    async def warehouse_exists(self, code: str) -> bool:
        return (
            await self._session.execute(select(warehouses.c.code).where(warehouses.c.code == code))
        ).first() is not None

    async def add_sku(self, values: dict[str, Any]) -> bool:
        result = await self._session.execute(
            pg_insert(skus).values(**values).on_conflict_do_nothing().returning(skus.c.sku)
        )
        return result.first() is not None

    async def get_sku(self, sku: str) -> dict[str, Any] | None:
        row = (await self._session.execute(select(skus).where(skus.c.sku == sku))).first()
        return dict(row._mapping) if row else None

    async def known_skus(self, candidates: set[str]) -> set[str]:
        rows = await self._session.execute(select(skus.c.sku).where(skus.c.sku.in_(candidates)))
        return {r.sku for r in rows}

    # -- stock ----------------------------------------------------------------------

    async def levels(self, sku: str) -> list[StockLevel]:
        rows = await self._session.execute(
            select(stock).where(stock.c.sku == sku).order_by(stock.c.warehouse)
        )
        return [StockLevel(r.sku, r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def availability(self, sku_set: set[str]) -> Availability:
        rows = await self._session.execute(
            select(stock.c.sku, stock.c.warehouse, (stock.c.on_hand - stock.c.reserved)).where(
                stock.c.sku.in_(sku_set)
            )
        )
        return {(r[0], r[1]): r[2] for r in rows}

    async def receive(self, sku: str, warehouse: str, qty: int, change: Change) -> StockLevel:
        """Add ``qty`` units on hand (creating the stock row on first receipt)."""
        row = (
            await self._session.execute(
                pg_insert(stock)
                .values(sku=sku, warehouse=warehouse, on_hand=qty, reserved=0)
                .on_conflict_do_update(
                    index_elements=[stock.c.sku, stock.c.warehouse],
                    set_={"on_hand": stock.c.on_hand + qty, "updated_at": func.now()},
                )
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).one()
        level = StockLevel(sku, warehouse, row.on_hand, row.reserved)
        await self._record(level, change, delta_on_hand=qty, delta_reserved=0)
        return level

    async def try_reserve(self, allocation: Allocation, change: Change) -> StockLevel | None:
        """Reserve if, and only if, enough is available at this instant.

        The guarded UPDATE re-checks ``on_hand - reserved >= qty`` on the committed row
        after any concurrent updater, so no interleaving can oversell; None means the
        race was lost (or there never was enough).
        """
        row = (
            await self._session.execute(
                update(stock)
                .where(
                    and_(
                        stock.c.sku == allocation.sku,
                        stock.c.warehouse == allocation.warehouse,
                        stock.c.on_hand - stock.c.reserved >= allocation.qty,
                    )
                )
                .values(reserved=stock.c.reserved + allocation.qty, updated_at=func.now())
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).first()
        if row is None:
            return None
        level = StockLevel(allocation.sku, allocation.warehouse, row.on_hand, row.reserved)
        await self._record(level, change, delta_on_hand=0, delta_reserved=allocation.qty)
        return level

    async def add_reservation(
        self, order_id: uuid.UUID, channel: str, allocation: Allocation, expires_at: datetime
    ) -> None:
        await self._session.execute(
            insert(reservations).values(
                order_id=order_id,
                line_no=allocation.line_no,
                sku=allocation.sku,
                warehouse=allocation.warehouse,
                channel=channel,
                qty=allocation.qty,
                state="reserved",
                expires_at=expires_at,
            )
        )

    async def reservations_of(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(reservations)
            .where(reservations.c.order_id == order_id)
            .order_by(reservations.c.line_no)
        )
        return [dict(r._mapping) for r in rows]

    async def _record(
        self, level: StockLevel, change: Change, *, delta_on_hand: int, delta_reserved: int
    ) -> None:
        await self._session.execute(
            insert(ledger).values(
                sku=level.sku,
                warehouse=level.warehouse,
                kind=change.kind,
                reason=change.reason,
                operator=change.operator,
                order_id=change.order_id,
                delta_on_hand=delta_on_hand,
                delta_reserved=delta_reserved,
                on_hand_after=level.on_hand,
                reserved_after=level.reserved,
            )
        )
