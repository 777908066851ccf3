"""When inventory gives an order's stock back on its own (an expired hold, an operator's
release), the order must not go on as if it still had it: it goes to the exception
queue as ``reservation_lost`` (and the notifier alerts), where retrying asks for the
stock again. A release order-svc asked for (a cancellation) needs nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from oms_contracts import Envelope, Event
from oms_contracts.events import StockReleased
from oms_messaging import UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.domain.order import HOLDS_STOCK, OrderState
from order_svc.exception_queue import open_exception
from order_svc.publishing import publish_transitions


async def on_stock_released(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, StockReleased)
    if event.reason == "cancelled":
        return  # released because the order was cancelled: what order-svc asked for
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(event.order_id)
    if order is None:
        return
    now = datetime.now(UTC)
    skus = ", ".join(sorted({f"{ln.sku} x{ln.qty} at {ln.warehouse}" for ln in event.lines}))
    detail = f"inventory released the stock ({event.reason}): {skus}"[:500]
    if order.state in HOLDS_STOCK:
        order.raise_exception(f"reservation_lost ({detail})", now)
        await publish_transitions(uow, order)
        await repo.save(order)
    elif order.state is OrderState.EXCEPTION:
        # Held for another cause with its stock: the person deciding must know it is gone.
        await open_exception(
            uow,
            order_id=order.id,
            channel=order.channel,
            cause="reservation_lost",
            detail=detail,
            at=now,
        )
