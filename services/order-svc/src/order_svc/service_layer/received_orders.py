"""Receiving orders: one received order (``handlers.on_order_received``, the reference)
and a run of them set-based (``oms_messaging.BatchHandler``).

Both go through :func:`receive_order`, the domain part: the order is created from the
channel's facts, ``OrderCreated`` announces it, a paid one takes the paid path (credit
check, workflow rules, routing) and ``OrderPaid`` asks for its stock. What differs is
how the reads and writes around it are done: one by one, about a dozen statements per
order; for a run of hundreds, the run's known orders, buyers, customer profiles, workflow
contexts and routing stock are read in one statement each (handed to each order's use
with ``UnitOfWork.prime``), the profiles copied onto the orders in one statement, and
the orders, their lines and transitions inserted in one statement each.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from oms_contracts import Envelope, Event
from oms_contracts.events import OrderCreated, OrderReceived
from oms_messaging import BatchHandler, UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.adapters.workflow_store import WorkflowStore
from order_svc.credit import record_credit_check, record_credit_checks
from order_svc.domain.order import Line, Order, OrderState
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.service_layer.paid_orders import OrderFlow, credit_request, decide_paid_order


async def receive_order(
    uow: UnitOfWork,
    event: OrderReceived,
    flow: OrderFlow,
    customer_requirements: list[str],
    now: datetime,
) -> Order:
    """The order the channel's facts describe, announced and (if paid) on its paid path;
    the caller stores it (:func:`order_details`) and records its credit check."""
    requirements = sorted(set(event.delivery_requirements) | set(customer_requirements))
    order = Order.receive(
        id=event.order_id,
        channel=event.channel,
        channel_order_id=event.channel_order_id,
        lines=[Line(ln.line_no, ln.sku, ln.qty, ln.unit_price) for ln in event.lines],
        currency=event.currency,
        priority=event.priority,
        at=now,
        platform_user_id=event.customer.platform_user_id,
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
            delivery_requirements=requirements,
            priority=event.priority,
            created_at=now,
        )
    )
    reserve = order.state is OrderState.PAID and await decide_paid_order(
        uow,
        order,
        flow,
        now,
        region=event.shipping_address.region,
        requirements=requirements,
        payment_terms=event.payment_terms,
    )
    await publish_transitions(uow, order)
    if reserve:
        await uow.emit(order_paid_event(order, now))
    return order


def order_details(event: OrderReceived) -> dict[str, Any]:
    """The stored fields of a received order that the aggregate does not govern."""
    return {
        "customer": event.customer.model_dump(mode="json"),
        "shipping_address": event.shipping_address.model_dump(mode="json"),
        "delivery_requirements": event.delivery_requirements,
        "notes": event.notes,
        "paid_at": event.paid_at if event.paid else None,
        "channel_updated_at": event.channel_updated_at,
    }


async def record_paid_check(
    uow: UnitOfWork, order: Order, event: OrderReceived, flow: OrderFlow, now: datetime
) -> None:
    """A paid order's credit check (pending, or skipped where none is set up)."""
    if event.paid:
        customer = event.customer.model_dump(mode="json")
        await record_credit_check(uow, order.id, credit_request(order, customer), flow.credit, now)


def make_on_orders_received(flow: OrderFlow) -> BatchHandler:
    async def on_orders_received(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
        repo = OrderRepository(uow.session)
        received: list[tuple[Envelope, OrderReceived]] = []
        for envelope, event in items:
            assert isinstance(event, OrderReceived)
            received.append((envelope, event))
        seen = await repo.existing(sorted({event.order_id for _, event in received}))
        fresh: list[tuple[Envelope, OrderReceived]] = []
        for envelope, event in received:
            if event.order_id not in seen:  # the same order re-sent: created once
                seen.add(event.order_id)
                fresh.append((envelope, event))
        if not fresh:
            return
        now = datetime.now(UTC)
        requirements = await _profiles_at_receipt(uow, [event for _, event in fresh], now)
        await _prime_paid_path(uow, [event for _, event in fresh if event.paid])
        new: list[tuple[Order, OrderReceived]] = []
        for envelope, event in fresh:
            uow.caused_by(envelope)
            order = await receive_order(uow, event, flow, requirements.get(event.order_id, []), now)
            new.append((order, event))
        uow.drop_primed()
        await repo.add_many([(order, order_details(event)) for order, event in new])
        await record_credit_checks(
            uow,
            [
                (order.id, credit_request(order, event.customer.model_dump(mode="json")))
                for order, event in new
                if event.paid
            ],
            flow.credit,
            now,
        )

    return on_orders_received


async def _profiles_at_receipt(
    uow: UnitOfWork, events: list[OrderReceived], now: datetime
) -> dict[uuid.UUID, list[str]]:
    """``read_models.profile_at_receipt`` for a run: known buyers' profiles copied onto
    their new orders; each order's customer requirements."""
    repo = RoutingRepository(uow.session)
    linked = await repo.customers_of({(e.channel, e.customer.platform_user_id) for e in events})
    surviving = await repo.surviving_many(set(linked.values()))
    profiles = await repo.profiles(set(surviving.values()))
    copies = []
    requirements: dict[uuid.UUID, list[str]] = {}
    for event in events:
        customer = linked.get((event.channel, event.customer.platform_user_id))
        profile = None if customer is None else profiles.get(surviving[customer])
        if customer is not None and profile is not None:
            copies.append((event.order_id, surviving[customer], profile))
            requirements[event.order_id] = list(profile["delivery_requirements"] or [])
    await repo.copy_many(copies, "receipt", now)
    return requirements


async def _prime_paid_path(uow: UnitOfWork, paid: list[OrderReceived]) -> None:
    """The workflow context and the routing stock of every paid order of the run, read
    once and handed to each order's paid path."""
    if not paid:
        return
    contexts = await WorkflowStore(uow.session).contexts([e.order_id for e in paid])
    stock = await RoutingRepository(uow.session).stock({line.sku for e in paid for line in e.lines})
    for event in paid:
        skus = {line.sku for line in event.lines}
        uow.prime(("workflow:context", event.order_id), contexts[event.order_id])
        uow.prime(
            ("routing:stock", event.order_id),
            stock.only(skus),
        )
