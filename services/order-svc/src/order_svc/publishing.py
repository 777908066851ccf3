"""Domain changes as integration events: the one place transitions are published."""

from __future__ import annotations

import uuid
from datetime import datetime

from oms_contracts.events import OrderLine, OrderPaid, OrderStatusChanged, StatusTransition
from oms_messaging import UnitOfWork
from order_svc.domain.buyer import buyer_key
from order_svc.domain.order import Order
from order_svc.exception_queue import track_exceptions
from order_svc.sla import track_sla


async def publish_transitions(uow: UnitOfWork, order: Order) -> None:
    """The transitions not yet stored, as one OrderStatusChanged per order and commit.

    A batch moves an order several times in one transaction (paid, reserved, confirmed,
    routed); publishing each would cost every reader of ``oms.orders`` one message per
    step. The order's latest transition is the event and the earlier ones of this
    commit ride along in ``earlier`` (a later call in the same transaction replaces the
    event it emitted before, keeping its transitions).

    Also the one hook of the SLA clocks and the exception queue: every transition,
    whoever caused it, starts/stops its stages and opens/closes exceptions here.
    """
    if not order.pending:
        return
    published = await uow.cached(_PUBLISHED, _nothing_published)
    earlier = published.setdefault(order.id, [])
    for t in order.pending:
        earlier.append(
            StatusTransition(
                from_state=t.from_state.value if t.from_state else None,
                to_state=t.to_state.value,
                actor=t.actor,
                reason=t.reason,
                changed_at=t.at,
            )
        )
        await track_sla(uow, order, t)
        await track_exceptions(uow, order, t)
    last = earlier[-1]
    await uow.emit(
        OrderStatusChanged(
            order_id=order.id,
            channel=order.channel,
            **last.model_dump(),
            earlier=earlier[:-1],
        ),
        snapshot_of=f"OrderStatusChanged:{order.id}",
    )


#: The transitions this transaction has published, per order (in the unit of work's
#: cache, so a rolled-back batch forgets them with everything else).
_PUBLISHED = ("order-transitions-published",)


async def _nothing_published() -> dict[uuid.UUID, list[StatusTransition]]:
    return {}


def order_paid_event(order: Order, now: datetime) -> OrderPaid:
    """OrderPaid asks inventory to reserve the order's lines (per-line warehouses if routed).

    It names the buyer by an opaque key only (see ``domain.buyer``), for the SKUs' caps
    per customer; an order whose channel gave no buyer account is named by none.
    """
    buyer = buyer_key(order.channel, order.platform_user_id) if order.platform_user_id else None
    return OrderPaid(
        order_id=order.id,
        channel=order.channel,
        lines=[
            OrderLine(
                line_no=ln.line_no,
                sku=ln.sku,
                qty=ln.qty,
                unit_price=ln.unit_price,
                warehouse=ln.warehouse,
            )
            for ln in order.lines
        ],
        currency=order.currency,
        total=order.total,
        paid_at=order.paid_at or now,
        buyer=buyer,
    )
