"""Stock pool persistence: guarded updates and the ledger row of every change.

Every change of ``stock`` goes through :meth:`StockRepository._change`, which writes the
ledger row with the resulting numbers in the same statement batch, so the ledger's
deltas always sum to the stock row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_svc.adapters.tables import (
    buyer_purchases,
    channel_allocations,
    ledger,
    reservations,
    sku_policies,
    skus,
    stock,
    warehouses,
)
from inventory_svc.domain.allocation import Allocation, Availability
from inventory_svc.domain.policy import ChannelUsage


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
        self,
        order_id: uuid.UUID,
        channel: str,
        allocation: Allocation,
        expires_at: datetime,
        unit_price: Decimal | None = None,
        buyer: str | None = None,
    ) -> None:
        """``buyer``: whose cap per customer the line was counted against, if it was."""
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
                unit_price=unit_price,
                buyer=buyer,
            )
        )

    async def reservations_of(self, order_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(reservations)
            .where(reservations.c.order_id == order_id)
            .order_by(reservations.c.line_no)
        )
        return [dict(r._mapping) for r in rows]

    async def forget_released(self, order_id: uuid.UUID) -> None:
        """Drop the order's released reservation rows, so it can reserve again."""
        await self._session.execute(
            delete(reservations).where(
                reservations.c.order_id == order_id, reservations.c.state == "released"
            )
        )

    async def update_warehouse(self, code: str, values: dict[str, Any]) -> bool:
        result = await self._session.execute(
            update(warehouses)
            .where(warehouses.c.code == code)
            .values(**values, updated_at=func.now())
            .returning(warehouses.c.code)
        )
        return result.first() is not None

    async def get_warehouse(self, code: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(select(warehouses).where(warehouses.c.code == code))
        ).first()
        return dict(row._mapping) if row else None

    async def level(self, sku: str, warehouse: str) -> StockLevel | None:
        row = (
            await self._session.execute(
                select(stock).where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse))
            )
        ).first()
        return StockLevel(sku, warehouse, row.on_hand, row.reserved) if row else None

    async def total_available(self, sku: str) -> int:
        value = await self._session.scalar(
            select(func.coalesce(func.sum(stock.c.on_hand - stock.c.reserved), 0)).where(
                stock.c.sku == sku
            )
        )
        return int(value or 0)

    async def adjust(
        self, sku: str, warehouse: str, delta: int, change: Change
    ) -> StockLevel | None:
        """Change on hand by ``delta`` unless that takes it below zero or below reserved.

        None: refused (nothing changed). A positive adjustment creates the stock row.
        """
        if delta > 0:
            return await self.receive(sku, warehouse, delta, change)
        row = (
            await self._session.execute(
                update(stock)
                .where(
                    and_(
                        stock.c.sku == sku,
                        stock.c.warehouse == warehouse,
                        stock.c.on_hand + delta >= stock.c.reserved,
                    )
                )
                .values(on_hand=stock.c.on_hand + delta, updated_at=func.now())
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).first()
        if row is None:
            return None
        level = StockLevel(sku, warehouse, row.on_hand, row.reserved)
        await self._record(level, change, delta_on_hand=delta, delta_reserved=0)
        return level

    async def release(self, sku: str, warehouse: str, qty: int, change: Change) -> StockLevel:
        """Give ``qty`` reserved units back to the pool."""
        row = (
            await self._session.execute(
                update(stock)
                .where(
                    and_(
                        stock.c.sku == sku,
                        stock.c.warehouse == warehouse,
                        stock.c.reserved >= qty,
                    )
                )
                .values(reserved=stock.c.reserved - qty, updated_at=func.now())
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).one()
        level = StockLevel(sku, warehouse, row.on_hand, row.reserved)
        await self._record(level, change, delta_on_hand=0, delta_reserved=-qty)
        return level

    async def ship(self, sku: str, warehouse: str, qty: int, change: Change) -> StockLevel:
        """Reserved units leave the building: on hand and reserved both go down."""
        row = (
            await self._session.execute(
                update(stock)
                .where(
                    and_(
                        stock.c.sku == sku,
                        stock.c.warehouse == warehouse,
                        stock.c.reserved >= qty,
                    )
                )
                .values(
                    on_hand=stock.c.on_hand - qty,
                    reserved=stock.c.reserved - qty,
                    updated_at=func.now(),
                )
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).one()
        level = StockLevel(sku, warehouse, row.on_hand, row.reserved)
        await self._record(level, change, delta_on_hand=-qty, delta_reserved=-qty)
        return level

    # -- reservations' life cycle ---------------------------------------------------

    async def close_reservations(
        self,
        order_id: uuid.UUID,
        to_state: str,
        line_nos: set[int] | None = None,
        *,
        expired_by: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Move the order's open reservations to ``to_state``; only those that moved.

        The guard ``state = 'reserved'`` makes a repeated cancel/ship/expiry a no-op,
        whatever event id it comes with. With ``expired_by``, only holds still expiring
        by then move (a confirmed order's have no expiry): the guard is in the statement
        itself, so a confirmation that commits after the sweeper picked the order wins
        (under READ COMMITTED this update waits for it and re-checks the committed row).
        """
        condition = and_(reservations.c.order_id == order_id, reservations.c.state == "reserved")
        if line_nos is not None:
            condition = and_(condition, reservations.c.line_no.in_(line_nos))
        if expired_by is not None:
            condition = and_(condition, _expired_by(expired_by))
        rows = await self._session.execute(
            update(reservations)
            .where(condition)
            .values(state=to_state, closed_at=func.now())
            .returning(reservations)
        )
        return sorted(
            (dict(r._mapping) for r in rows), key=lambda r: (r["sku"], r["warehouse"], r["line_no"])
        )

    async def hold_many_until_shipped(self, order_ids: list[uuid.UUID]) -> int:
        """:meth:`hold_until_shipped` for many orders in one statement."""
        rows = await self._session.execute(
            update(reservations)
            .where(reservations.c.order_id.in_(order_ids), reservations.c.state == "reserved")
            .values(expires_at=None)
            .returning(reservations.c.line_no)
        )
        return len(rows.all())

    async def hold_until_shipped(self, order_id: uuid.UUID) -> int:
        """The order's open reservations stop expiring (its order is confirmed); how many."""
        rows = await self._session.execute(
            update(reservations)
            .where(reservations.c.order_id == order_id, reservations.c.state == "reserved")
            .values(expires_at=None)
            .returning(reservations.c.line_no)
        )
        return len(rows.all())

    async def expired_orders(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Orders holding open reservations whose expiry passed by ``now``, the longest
        expired first (at most ``limit`` reservation lines' worth)."""
        rows = await self._session.execute(expired_holds_query(now, limit))
        return list(dict.fromkeys(r.order_id for r in rows))

    # -- channel allocation counters -------------------------------------------------

    async def ensure_counters(self, keys: list[tuple[str, str]]) -> None:
        if keys:
            await self._session.execute(
                pg_insert(channel_allocations)
                .values([{"sku": sku, "channel": ch} for sku, ch in sorted(set(keys))])
                .on_conflict_do_nothing()
            )

    async def usage(
        self, sku_set: set[str], channel: str | None = None
    ) -> dict[tuple[str, str], ChannelUsage]:
        query = select(channel_allocations).where(channel_allocations.c.sku.in_(sku_set))
        if channel is not None:
            query = query.where(channel_allocations.c.channel == channel)
        rows = await self._session.execute(query)
        return {
            (r.sku, r.channel): ChannelUsage(r.reserved, r.shipped, r.cap_units, r.paused)
            for r in rows
        }

    async def try_take(self, sku: str, channel: str, qty: int) -> bool:
        """Count ``qty`` more units against the channel, if its cap and pause allow it.

        A guarded conditional update, like the stock one: a concurrent order blocked on
        the same row re-checks the cap on the committed row, so the cap cannot be passed.
        """
        row = (
            await self._session.execute(
                update(channel_allocations)
                .where(
                    and_(
                        channel_allocations.c.sku == sku,
                        channel_allocations.c.channel == channel,
                        channel_allocations.c.paused.is_(False),
                        or_(
                            channel_allocations.c.cap_units.is_(None),
                            channel_allocations.c.reserved + channel_allocations.c.shipped + qty
                            <= channel_allocations.c.cap_units,
                        ),
                    )
                )
                .values(reserved=channel_allocations.c.reserved + qty, updated_at=func.now())
                .returning(channel_allocations.c.reserved)
            )
        ).first()
        return row is not None

    async def give_back(self, sku: str, channel: str, qty: int, *, shipped: bool) -> None:
        """A channel's reserved units are released (or shipped, counting on as shipped)."""
        values: dict[str, Any] = {
            "reserved": func.greatest(channel_allocations.c.reserved - qty, 0),
            "updated_at": func.now(),
        }
        if shipped:
            values["shipped"] = channel_allocations.c.shipped + qty
        await self._session.execute(
            update(channel_allocations)
            .where(and_(channel_allocations.c.sku == sku, channel_allocations.c.channel == channel))
            .values(**values)
        )

    async def lock_counters(self, sku: str) -> dict[str, ChannelUsage]:
        rows = await self._session.execute(
            select(channel_allocations)
            .where(channel_allocations.c.sku == sku)
            .order_by(channel_allocations.c.channel)
            .with_for_update()
        )
        return {r.channel: ChannelUsage(r.reserved, r.shipped, r.cap_units, r.paused) for r in rows}

    async def set_counter(self, sku: str, channel: str, **values: Any) -> None:
        await self._session.execute(
            update(channel_allocations)
            .where(and_(channel_allocations.c.sku == sku, channel_allocations.c.channel == channel))
            .values(**values, updated_at=func.now())
        )

    async def reset_shipped(self, sku: str) -> None:
        await self._session.execute(
            update(channel_allocations).where(channel_allocations.c.sku == sku).values(shipped=0)
        )

    async def on_hand_total(self, sku: str) -> int:
        value = await self._session.scalar(
            select(func.coalesce(func.sum(stock.c.on_hand), 0)).where(stock.c.sku == sku)
        )
        return int(value or 0)

    # -- caps per customer -------------------------------------------------------------

    async def buyer_held(self, sku_set: set[str], buyer: str) -> dict[str, int]:
        """Units of each SKU the buyer holds or bought (only SKUs counted so far)."""
        rows = await self._session.execute(
            select(buyer_purchases.c.sku, buyer_purchases.c.qty).where(
                and_(buyer_purchases.c.sku.in_(sku_set), buyer_purchases.c.buyer == buyer)
            )
        )
        return {r.sku: r.qty for r in rows}

    async def try_count_buyer(self, sku: str, buyer: str, qty: int, cap: int) -> bool:
        """Count ``qty`` more units against the buyer, if that stays within ``cap``.

        One guarded statement: the insert of a first purchase is itself guarded
        (``qty <= cap``), and the update of a known buyer re-checks the sum on the
        committed row after any concurrent order of the same buyer (a concurrent first
        insert makes this one wait and take the update path), so the cap cannot be
        passed whatever the interleaving. False: refused, nothing counted.
        """
        row = (
            await self._session.execute(
                text(
                    """
                    INSERT INTO buyer_purchases (sku, buyer, qty)
                    SELECT CAST(:sku AS text), CAST(:buyer AS text), CAST(:qty AS integer)
                    WHERE CAST(:qty AS integer) <= CAST(:cap AS integer)
                    ON CONFLICT (sku, buyer) DO UPDATE
                        SET qty = buyer_purchases.qty + EXCLUDED.qty, updated_at = now()
                        WHERE buyer_purchases.qty + EXCLUDED.qty <= CAST(:cap AS integer)
                    RETURNING qty
                    """
                ),
                {"sku": sku, "buyer": buyer, "qty": qty, "cap": cap},
            )
        ).first()
        return row is not None

    async def uncount_buyer(self, sku: str, buyer: str, qty: int) -> None:
        """Released units go back to the buyer's allowance."""
        await self._session.execute(
            update(buyer_purchases)
            .where(and_(buyer_purchases.c.sku == sku, buyer_purchases.c.buyer == buyer))
            .values(qty=func.greatest(buyer_purchases.c.qty - qty, 0), updated_at=func.now())
        )

    # -- policies ----------------------------------------------------------------------

    async def get_policy(self, sku: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(select(sku_policies).where(sku_policies.c.sku == sku))
        ).first()
        return dict(row._mapping) if row else None

    async def policies(self, sku_set: set[str]) -> dict[str, dict[str, Any]]:
        rows = await self._session.execute(
            select(sku_policies).where(sku_policies.c.sku.in_(sku_set))
        )
        return {r.sku: dict(r._mapping) for r in rows}

    async def put_policy(self, sku: str, values: dict[str, Any]) -> dict[str, Any]:
        row = (
            await self._session.execute(
                pg_insert(sku_policies)
                .values(sku=sku, **values)
                .on_conflict_do_update(
                    index_elements=[sku_policies.c.sku], set_={**values, "updated_at": func.now()}
                )
                .returning(sku_policies)
            )
        ).one()
        return dict(row._mapping)

    async def flip_low(self, sku: str, low: bool) -> bool:
        """Set the policy's low flag; True only for the one transaction that flipped it."""
        row = (
            await self._session.execute(
                update(sku_policies)
                .where(and_(sku_policies.c.sku == sku, sku_policies.c.low.is_(not low)))
                .values(low=low, updated_at=func.now())
                .returning(sku_policies.c.sku)
            )
        ).first()
        return row is not None

    async def set_abc_classes(self, classes: dict[str, str]) -> None:
        for sku, abc in sorted(classes.items()):
            await self._session.execute(
                pg_insert(sku_policies)
                .values(sku=sku, abc_class=abc)
                .on_conflict_do_update(index_elements=[sku_policies.c.sku], set_={"abc_class": abc})
            )

    async def all_skus(self) -> set[str]:
        return set((await self._session.execute(select(skus.c.sku))).scalars())

    async def sales_value_since(self, since: datetime) -> dict[str, Decimal]:
        """Sales value per SKU from reservations made since ``since`` and not released."""
        rows = await self._session.execute(
            select(
                reservations.c.sku,
                func.coalesce(
                    func.sum(reservations.c.qty * func.coalesce(reservations.c.unit_price, 0)), 0
                ),
            )
            .where(and_(reservations.c.created_at >= since, reservations.c.state != "released"))
            .group_by(reservations.c.sku)
        )
        return {r[0]: Decimal(r[1]) for r in rows}

    async def skus_in_class(self, abc: str) -> list[str]:
        effective = func.coalesce(sku_policies.c.abc_override, sku_policies.c.abc_class)
        query = select(skus.c.sku).select_from(
            skus.outerjoin(sku_policies, sku_policies.c.sku == skus.c.sku)
        )
        if abc == "C":
            query = query.where(or_(effective.is_(None), effective == "C"))
        else:
            query = query.where(effective == abc)
        return list((await self._session.execute(query.order_by(skus.c.sku))).scalars())

    # -- ledger --------------------------------------------------------------------------

    async def ledger_page(
        self,
        *,
        sku: str | None,
        warehouse: str | None,
        reason: str | None,
        start: datetime | None,
        end: datetime | None,
        after_id: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        query = select(ledger).order_by(ledger.c.id).limit(limit)
        if sku is not None:
            query = query.where(ledger.c.sku == sku)
        if warehouse is not None:
            query = query.where(ledger.c.warehouse == warehouse)
        if reason is not None:
            query = query.where(ledger.c.reason == reason)
        if start is not None:
            query = query.where(ledger.c.at >= start)
        if end is not None:
            query = query.where(ledger.c.at < end)
        if after_id is not None:
            query = query.where(ledger.c.id > after_id)
        return [dict(r._mapping) for r in await self._session.execute(query)]

    async def purge_ledger(self, before: datetime, operator: str) -> int:
        """Delete ledger rows older than ``before``, carrying their sums forward.

        Per (sku, warehouse), the deleted rows are replaced by one ``balance_forward`` row
        (dated ``before``) holding their summed deltas, so the ledger still sums to the
        stock row. Returns how many rows were deleted.
        """
        result = await self._session.execute(
            text(
                """
                WITH gone AS (
                    DELETE FROM ledger WHERE at < :before
                    RETURNING sku, warehouse, delta_on_hand, delta_reserved
                ), carried AS (
                    INSERT INTO ledger (at, sku, warehouse, kind, reason, operator,
                                        delta_on_hand, delta_reserved,
                                        on_hand_after, reserved_after)
                    SELECT :before, sku, warehouse, 'balance_forward', 'retention purge',
                           :operator, SUM(delta_on_hand), SUM(delta_reserved),
                           SUM(delta_on_hand), SUM(delta_reserved)
                    FROM gone GROUP BY sku, warehouse
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM gone) AS deleted
                """
            ),
            {"before": before, "operator": operator},
        )
        return int(result.scalar_one())

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


def _expired_by(now: datetime) -> ColumnElement[bool]:
    """An open hold that still expires, and did by ``now``. ``expires_at IS NOT NULL`` is
    implied by the comparison (NULL is never less than anything) but spelled out: a
    confirmed order's reservations have no expiry and must never match."""
    return and_(
        reservations.c.state == "reserved",
        reservations.c.expires_at.is_not(None),
        reservations.c.expires_at < now,
    )


def expired_holds_query(now: datetime, limit: int) -> Select[tuple[uuid.UUID]]:
    """The sweeper's pick: open, still-expiring holds past ``now``, oldest expiry first.

    Served by the partial index ``reservations_open_idx`` (``expires_at`` of open rows):
    a range scan from the oldest expiry that stops at ``now``, however many confirmed or
    closed reservations the table holds. Rows another transaction is changing (a cancel,
    a confirmation) are skipped for this round rather than waited for.
    """
    return (
        select(reservations.c.order_id)
        .where(_expired_by(now))
        .order_by(reservations.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
