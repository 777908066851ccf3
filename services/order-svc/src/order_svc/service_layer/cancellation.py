"""Cancelling an order: the one place that turns a cancellation into its events."""

from __future__ import annotations

from datetime import datetime

from oms_contracts.events import OrderCancelled
from oms_messaging import UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.domain.order import Order


async def cancel_order(
    uow: UnitOfWork, order: Order, reason: str, actor: str, now: datetime
) -> bool:
    """Cancel ``order`` (False: it already was); OrderCancelled tells inventory to
    release whatever it holds for it. Raises IllegalTransition once the parcel left.
    The caller publishes the transitions and saves the order."""
    if not order.cancel(reason, actor, now):
        return False
    await uow.emit(
        OrderCancelled(
            order_id=order.id,
            channel=order.channel,
            reason=reason,
            actor=actor,
            cancelled_at=now,
        )
    )
    await OrderRepository(uow.session).set_details(order.id, cancelled_at=now, cancel_reason=reason)
    return True
