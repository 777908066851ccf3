"""Event handlers of order-svc: orders advance as the other services answer.

OrderReceived creates the order (paid -> the credit check when a bureau is configured,
whose worker later emits OrderPaid; otherwise OrderPaid at once asks inventory to reserve);
StockReserved reserves and confirms it; StockRejected parks it in the exception queue
with the reason; CustomerResolved links it to its customer. Each handler runs in the
consumer's unit of work, so the order's change and the events it causes commit together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oms_contracts import Envelope, Event
from oms_contracts.events import (
    CustomerResolved,
    OrderConfirmed,
    OrderCreated,
    OrderReceived,
    StockRejected,
    StockReserved,
)
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec
from order_svc.adapters.repository import OrderRepository
from order_svc.credit import CreditConfig, record_credit_check
from order_svc.domain.order import Line, Order, OrderState
from order_svc.publishing import order_paid_event, publish_transitions


def make_on_order_received(credit: CreditConfig) -> Handler:
    """The OrderReceived handler; a paid order goes to the credit check when one is set up."""

    async def on_order_received(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderReceived)
        repo = OrderRepository(uow.session)
        if await repo.exists(event.order_id):
            return  # the same order re-sent under a new event id: already created
        now = datetime.now(UTC)
        order = Order.receive(
            id=event.order_id,
            channel=event.channel,
            channel_order_id=event.channel_order_id,
            lines=[Line(ln.line_no, ln.sku, ln.qty, ln.unit_price) for ln in event.lines],
            currency=event.currency,
            priority=event.priority,
            at=now,
        )
        if event.paid:
            order.mark_paid(now)
            order.paid_at = event.paid_at or now
        else:
            order.await_payment(now)
        await uow.emit(
            OrderCreated(
                order_id=order.id,
                channel=order.channel,
                channel_order_id=order.channel_order_id,
                customer=event.customer,
                lines=event.lines,
                currency=order.currency,
                total=order.total,
                shipping_address=event.shipping_address,
                delivery_requirements=event.delivery_requirements,
                priority=event.priority,
                created_at=now,
            )
        )
        if order.state is OrderState.PAID and credit.enabled:
            order.start_credit_check(now)  # the worker asks the bureau, then emits OrderPaid
        await publish_transitions(uow, order)
        if order.state is OrderState.PAID:
            await uow.emit(order_paid_event(order, now))
        await repo.add(
            order,
            {
                "customer": event.customer.model_dump(mode="json"),
                "shipping_address": event.shipping_address.model_dump(mode="json"),
                "delivery_requirements": event.delivery_requirements,
                "notes": event.notes,
                "paid_at": event.paid_at if event.paid else None,
            },
        )
        if event.paid:
            await record_credit_check(uow, order.id, credit_request(order, event), credit, now)

    return on_order_received


def credit_request(order: Order, event: OrderReceived) -> dict[str, Any]:
    """What the bureau is asked about an order (JSON, stored with the check)."""
    return {
        "order_id": str(order.id),
        "channel": order.channel,
        "amount": str(order.total),
        "currency": order.currency,
        "customer": event.customer.model_dump(mode="json"),
    }


#: Without a bureau (the default): the check is recorded as skipped.
on_order_received = make_on_order_received(CreditConfig(enabled=False, budget_s=0))


async def on_stock_reserved(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, StockReserved)
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(event.order_id)
    if order is None or order.state is not OrderState.PAID:
        return  # not waiting for stock (cancelled meanwhile, or answered before)
    now = datetime.now(UTC)
    order.reserve({line.line_no: line.warehouse for line in event.lines}, now)
    order.confirm(now)
    await publish_transitions(uow, order)
    await uow.emit(OrderConfirmed(order_id=order.id, channel=order.channel, confirmed_at=now))
    await repo.save(order)


async def on_stock_rejected(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, StockRejected)
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(event.order_id)
    if order is None or order.state is not OrderState.PAID:
        return
    reasons = ", ".join(f"{line.sku}: {line.reason}" for line in event.lines)
    order.raise_exception(f"stock_rejected ({reasons})", datetime.now(UTC))
    await publish_transitions(uow, order)
    await repo.save(order)


async def on_customer_resolved(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CustomerResolved)
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(event.order_id)
    if order is None or order.customer_id == event.customer_id:
        return
    order.customer_id = event.customer_id
    await repo.save(order)


def consumer_specs(credit: CreditConfig | None = None) -> list[ConsumerSpec]:
    received = make_on_order_received(credit) if credit is not None else on_order_received
    handlers: dict[str, Handler] = {
        OrderReceived.event_type: received,
        StockReserved.event_type: on_stock_reserved,
        StockRejected.event_type: on_stock_rejected,
        CustomerResolved.event_type: on_customer_resolved,
    }
    topics = [Topic.CHANNEL_ORDERS, Topic.RESERVATIONS, Topic.CUSTOMERS]
    return [ConsumerSpec(group_id="order-svc", topics=[t.value for t in topics], handlers=handlers)]
