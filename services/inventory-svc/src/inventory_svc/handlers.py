"""Event handlers of inventory-svc: a paid order reserves its stock (all lines or none,
within the channel's cap), a confirmed one keeps it until it ships (only unconfirmed
holds expire), a cancelled one releases it, a shipped one deducts it; and the periodic
jobs (expiry sweeper, ledger purge, ABC classes, channel stock sync-out)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from inventory_svc.adapters.stock_repository import StockRepository
from inventory_svc.forecasting import record_cancelled_order, record_paid_order
from inventory_svc.inventory import SYSTEM, Inventory
from inventory_svc.metrics import count_sweep_failures
from inventory_svc.service_layer.paid_orders import make_reserve_paid_orders
from oms_contracts import Envelope, Event
from oms_contracts.events import OrderCancelled, OrderConfirmed, OrderPaid, OrderShipped
from oms_contracts.topics import Topic
from oms_messaging import BatchHandler, Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]


class ReservationHandler:
    def __init__(self, reservation_ttl: timedelta) -> None:
        self._ttl = reservation_ttl

    async def on_order_paid(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderPaid)
        await Inventory(uow).reserve_order(event, self._ttl)
        # Demand is counted at payment, in the same unit of work (see forecasting.py).
        await record_paid_order(uow, event)

    async def on_order_confirmed(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderConfirmed)
        await Inventory(uow).hold_for_confirmed_order(event.order_id)

    async def on_order_cancelled(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderCancelled)
        await Inventory(uow).release_order(event.order_id, "cancelled")
        await record_cancelled_order(uow, event.order_id)

    async def on_orders_confirmed(
        self, uow: UnitOfWork, items: list[tuple[Envelope, Event]]
    ) -> None:
        """A run of confirmations in one statement (the same effect as one by one: each
        sets the order's open holds to never expire)."""
        order_ids = [e.order_id for _, e in items if isinstance(e, OrderConfirmed)]
        await StockRepository(uow.session).hold_many_until_shipped(order_ids)

    async def on_order_shipped(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderShipped)
        line_nos = {line.line_no for line in event.lines} or None
        await Inventory(uow).ship_order(event.order_id, line_nos)


def consumer_specs(reservation_ttl: timedelta) -> list[ConsumerSpec]:
    reservations = ReservationHandler(reservation_ttl)
    handlers: dict[str, Handler] = {
        OrderPaid.event_type: reservations.on_order_paid,
        OrderConfirmed.event_type: reservations.on_order_confirmed,
        OrderCancelled.event_type: reservations.on_order_cancelled,
        OrderShipped.event_type: reservations.on_order_shipped,
    }
    batch_handlers: dict[str, BatchHandler] = {
        OrderPaid.event_type: make_reserve_paid_orders(reservation_ttl),
        OrderConfirmed.event_type: reservations.on_orders_confirmed,
    }
    return [
        ConsumerSpec(
            group_id="inventory-svc",
            topics=[Topic.ORDERS.value],
            handlers=handlers,
            batch_handlers=batch_handlers,
        )
    ]


# -- periodic jobs -----------------------------------------------------------------------


async def sweep_expired(uow_factory: UowFactory, batch: int, now: datetime | None = None) -> int:
    """Release holds past ``expires_at`` (orders not yet confirmed: a confirmed order's
    reservations never expire); how many orders were released.

    One order per transaction, so one order that cannot be released (a broken row, a
    constraint) neither rolls back the others nor stops the run: it is logged, counted
    (``oms_reservation_sweep_failures``) and left for the next run. The log names the
    order id and the error (SKUs, quantities, the opaque buyer key at most), no personal
    data: inventory never holds any.
    """
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        orders = await Inventory(uow).expired_orders(now, batch)
    released = failed = 0
    for order_id in orders:
        try:
            async with uow_factory() as uow:
                if await Inventory(uow).release_expired_hold(order_id, now):
                    released += 1
                await uow.commit()
        except Exception as exc:
            failed += 1
            log.exception(
                "releasing an expired hold failed; left for the next run",
                extra={"order_id": str(order_id), "error": type(exc).__name__},
            )
    if failed:
        count_sweep_failures(failed)
    if released or failed:
        log.info("released expired holds", extra={"orders": released, "failed": failed})
    return released


async def purge_ledger(
    uow_factory: UowFactory, retention_days: int, now: datetime | None = None
) -> int:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    async with uow_factory() as uow:
        deleted = await Inventory(uow).repo.purge_ledger(cutoff, SYSTEM)
        await uow.commit()
    log.info(
        "ledger purged",
        extra={"deleted": deleted, "cutoff": cutoff.isoformat(), "retention_days": retention_days},
    )
    return deleted


async def recompute_abc(uow_factory: UowFactory, now: datetime | None = None) -> dict[str, str]:
    now = now or datetime.now(UTC)
    async with uow_factory() as uow:
        classes = await Inventory(uow).recompute_abc(now)
        await uow.commit()
    log.info("ABC classes recomputed", extra={"skus": len(classes)})
    return dict(classes)


async def sync_class(uow_factory: UowFactory, abc: str) -> int:
    """Publish the channels' available-to-sell of every SKU of class ``abc``."""
    async with uow_factory() as uow:
        skus = await Inventory(uow).repo.skus_in_class(abc)
    published = 0
    for sku in skus:
        async with uow_factory() as uow:
            published += await Inventory(uow).sync_channels(sku)
            await uow.commit()
    log.info("channel stock synced", extra={"abc_class": abc, "skus": len(skus)})
    return published
