"""What order-svc does when a channel says something new about an order it sent.

The gateway publishes what the channel now says (``ChannelOrderUpdated``); the rules of
``domain.channel_facts`` decide what that means for the order in its state, and this
handler carries it out in the consumer's unit of work: the order's change, its events
(OrderPaid, OrderCancelled, OrderStatusChanged, exceptions) and the channel version it
now follows commit together.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from oms_contracts import Envelope, Event
from oms_contracts.events import ChannelOrderUpdated
from oms_messaging import Handler, UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.credit import record_credit_check
from order_svc.domain.channel_facts import ChannelWord, Reaction, change_detail, is_stale, react
from order_svc.domain.order import Line, Order, OrderState
from order_svc.exception_queue import open_exception
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.service_layer.cancellation import cancel_order
from order_svc.service_layer.paid_orders import OrderFlow, credit_request, decide_paid_order

log = logging.getLogger(__name__)


def make_on_channel_order_updated(flow: OrderFlow) -> Handler:
    async def on_channel_order_updated(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, ChannelOrderUpdated)
        repo = OrderRepository(uow.session)
        order = await repo.get_for_update(event.order_id)
        if order is None:
            # OrderReceived precedes every fact of its order on the partition: only an
            # order whose OrderReceived was dead-lettered is unknown here.
            log.warning(
                "channel fact for an unknown order", extra={"order_id": str(event.order_id)}
            )
            return
        applied_at, customer = await repo.channel_version(order.id)
        word = ChannelWord(
            paid=event.paid,
            cancelled=event.cancelled,
            lines_changed="lines" in event.changes,
            address_changed="address" in event.changes,
            channel_updated_at=event.channel_updated_at,
        )
        if is_stale(word, applied_at):
            log.info("stale channel fact ignored", extra={"order_id": str(order.id)})
            return
        now = datetime.now(UTC)
        paid = await _carry_out(uow, order, event, react(order.state, word), flow, now)
        await repo.save(order)
        if paid:
            await record_credit_check(
                uow, order.id, credit_request(order, customer), flow.credit, now
            )
        if event.channel_updated_at is not None:
            await repo.set_details(order.id, channel_updated_at=event.channel_updated_at)

    return on_channel_order_updated


async def _carry_out(
    uow: UnitOfWork,
    order: Order,
    event: ChannelOrderUpdated,
    reactions: list[Reaction],
    flow: OrderFlow,
    now: datetime,
) -> bool:
    """Apply ``reactions`` to ``order`` and publish what follows; True if it was paid."""
    repo = OrderRepository(uow.session)
    actor = f"channel:{event.channel}"
    paid = reserve = False
    for reaction in reactions:
        if reaction is Reaction.TAKE_LINES:
            order.take_channel_lines(
                [Line(ln.line_no, ln.sku, ln.qty, ln.unit_price) for ln in event.lines]
            )
            await repo.replace_lines(order)
        elif reaction is Reaction.TAKE_ADDRESS:
            address = event.shipping_address.model_dump(mode="json")
            await repo.set_details(order.id, shipping_address=address)
        elif reaction is Reaction.PAY:
            order.mark_paid(now)
            order.paid_at = event.paid_at or now
            await repo.set_details(order.id, paid_at=order.paid_at)
            paid = True
            reserve = await decide_paid_order(uow, order, flow, now)
        elif reaction is Reaction.CANCEL:
            reason = event.cancel_reason or "cancelled by the channel"
            await cancel_order(uow, order, reason, actor, now)
        elif reaction is Reaction.RETURN_FOR_REVIEW:
            detail = f"the channel cancelled the order after it was {order.state.value}"
            await _review(uow, order, "cancelled_after_shipment", detail, now)
        elif reaction is Reaction.CHANGE_FOR_REVIEW:
            detail = change_detail(event.changes, order.state)
            if order.state in (OrderState.SHIPPED, OrderState.DELIVERED) or not (
                order.can_move_to(OrderState.EXCEPTION)
            ):
                await _review(uow, order, "order_changed", detail, now)
            else:
                order.raise_exception(f"order_changed ({detail})", now, actor=actor)
    await publish_transitions(uow, order)
    if reserve:
        await uow.emit(order_paid_event(order, now))
    return paid


async def _review(uow: UnitOfWork, order: Order, cause: str, detail: str, now: datetime) -> None:
    """Put the order in front of a person without moving it (it stays where it is)."""
    await open_exception(
        uow, order_id=order.id, channel=order.channel, cause=cause, detail=detail, at=now
    )
