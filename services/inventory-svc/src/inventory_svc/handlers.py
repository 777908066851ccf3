"""Event handlers of inventory-svc: a paid order reserves its stock, all lines or none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inventory_svc.adapters.stock_repository import Change, StockRepository
from inventory_svc.domain.allocation import LineRejection, LineRequest, plan_allocation
from oms_contracts import Envelope, Event
from oms_contracts.events import OrderPaid, RejectedLine, ReservedLine, StockRejected, StockReserved
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

#: How often a plan that lost a race against a concurrent reservation is re-planned.
MAX_REPLANS = 3


class ReservationHandler:
    def __init__(self, reservation_ttl: timedelta) -> None:
        self._ttl = reservation_ttl

    async def on_order_paid(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderPaid)
        repo = StockRepository(uow.session)
        now = datetime.now(UTC)

        existing = await repo.reservations_of(event.order_id)
        if existing:
            # A repeated request (a new OrderPaid for the same order): answer the same.
            await uow.emit(
                StockReserved(
                    order_id=event.order_id,
                    lines=[
                        ReservedLine(
                            line_no=r["line_no"],
                            sku=r["sku"],
                            qty=r["qty"],
                            warehouse=r["warehouse"],
                        )
                        for r in existing
                    ],
                    reserved_at=now,
                )
            )
            return

        lines = [LineRequest(line.line_no, line.sku, line.qty) for line in event.lines]
        sku_set = {line.sku for line in lines}
        known = await repo.known_skus(sku_set)
        change = Change(
            kind="reservation",
            reason="order paid",
            operator="system:inventory-svc",
            order_id=event.order_id,
        )
        rejections: list[LineRejection] = []
        for _ in range(MAX_REPLANS):
            plan = plan_allocation(lines, await repo.availability(sku_set), known, event.warehouse)
            if not plan.accepted:
                rejections = plan.rejections
                break
            savepoint = await uow.session.begin_nested()
            # Rows are locked in (sku, warehouse) order, so multi-line orders never deadlock.
            ordered = sorted(plan.allocations, key=lambda a: (a.sku, a.warehouse, a.line_no))
            won = True
            for allocation in ordered:
                if await repo.try_reserve(allocation, change) is None:
                    won = False
                    break
            if not won:
                await savepoint.rollback()
                continue
            for allocation in plan.allocations:
                await repo.add_reservation(
                    event.order_id, event.channel, allocation, now + self._ttl
                )
            await savepoint.commit()
            await uow.emit(
                StockReserved(
                    order_id=event.order_id,
                    lines=[
                        ReservedLine(line_no=a.line_no, sku=a.sku, qty=a.qty, warehouse=a.warehouse)
                        for a in plan.allocations
                    ],
                    reserved_at=now,
                )
            )
            return
        else:
            rejections = [LineRejection(ln.line_no, ln.sku, ln.qty, "insufficient") for ln in lines]
        await uow.emit(
            StockRejected(
                order_id=event.order_id,
                lines=[
                    RejectedLine(
                        line_no=r.line_no,
                        sku=r.sku,
                        qty=r.qty,
                        reason=r.reason,
                        available=r.available,
                    )
                    for r in rejections
                ],
                rejected_at=now,
            )
        )


def consumer_specs(reservation_ttl: timedelta) -> list[ConsumerSpec]:
    reservations = ReservationHandler(reservation_ttl)
    handlers: dict[str, Handler] = {OrderPaid.event_type: reservations.on_order_paid}
    return [ConsumerSpec(group_id="inventory-svc", topics=[Topic.ORDERS.value], handlers=handlers)]
