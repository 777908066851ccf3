"""Event handlers of customer-svc: every new order's buyer is resolved to a customer id,
and the customer's order history (kept for the card and the tag rules) follows the
order's life."""

from __future__ import annotations

from datetime import UTC, datetime

from customer_svc.profiles import apply_tag_rules_at_commit, record_order, set_order_status
from customer_svc.resolution import resolve_customer
from customer_svc.service_layer.orders_created import buyer_identity, on_orders_created
from oms_contracts import Envelope, Event
from oms_contracts.events import CustomerResolved, OrderCancelled, OrderCreated, OrderShipped
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

GROUP_ID = "customer-svc"


async def on_order_created(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, OrderCreated)
    buyer = event.customer
    resolved = await resolve_customer(uow, buyer_identity(event))
    recorded = await record_order(
        uow.session,
        resolved.customer_id,
        order_id=event.order_id,
        channel=event.channel,
        total=event.total,
        currency=event.currency,
        item_count=sum(line.qty for line in event.lines),
        delivery_requirements=list(event.delivery_requirements),
        ordered_at=event.created_at,
    )
    await uow.emit(
        CustomerResolved(
            customer_id=resolved.customer_id,
            order_id=event.order_id,
            channel=event.channel,
            platform_user_id=buyer.platform_user_id,
            new_customer=resolved.new_customer,
            resolved_at=datetime.now(UTC),
        )
    )
    if recorded:
        await apply_tag_rules_at_commit(uow, resolved.customer_id)


async def on_order_cancelled(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, OrderCancelled)
    customer_id = await set_order_status(uow.session, event.order_id, "cancelled")
    if customer_id is not None:
        await apply_tag_rules_at_commit(uow, customer_id)


async def on_order_shipped(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, OrderShipped)
    await set_order_status(uow.session, event.order_id, "shipped")


def consumer_specs() -> list[ConsumerSpec]:
    handlers: dict[str, Handler] = {
        OrderCreated.event_type: on_order_created,
        OrderCancelled.event_type: on_order_cancelled,
        OrderShipped.event_type: on_order_shipped,
    }
    return [
        ConsumerSpec(
            group_id=GROUP_ID,
            topics=[Topic.ORDERS.value],
            handlers=handlers,
            batch_handlers={OrderCreated.event_type: on_orders_created},
        )
    ]
