"""Event handlers of customer-svc: every new order's buyer is resolved to a customer id."""

from __future__ import annotations

from datetime import UTC, datetime

from customer_svc.domain.identity import ChannelIdentity
from customer_svc.resolution import resolve_customer
from oms_contracts import Envelope, Event
from oms_contracts.events import CustomerResolved, OrderCreated
from oms_contracts.topics import Topic
from oms_messaging import Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec

GROUP_ID = "customer-svc"


async def on_order_created(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, OrderCreated)
    buyer = event.customer
    resolved = await resolve_customer(
        uow,
        ChannelIdentity(
            channel=event.channel,
            platform_user_id=buyer.platform_user_id,
            name=buyer.name,
            phone=buyer.phone,
            email=buyer.email,
        ),
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


def consumer_specs() -> list[ConsumerSpec]:
    handlers: dict[str, Handler] = {OrderCreated.event_type: on_order_created}
    return [ConsumerSpec(group_id=GROUP_ID, topics=[Topic.ORDERS.value], handlers=handlers)]
