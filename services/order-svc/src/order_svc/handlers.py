"""Event handlers of order-svc: orders advance as the other services answer.

OrderReceived creates the order (paid -> the credit check when a bureau is configured,
whose worker later emits OrderPaid; otherwise the workflow rules hold it for review or
OrderPaid at once asks inventory to reserve); StockReserved reserves it and the rules
move it on (by default to ``confirmed`` and ``routed``); StockRejected parks it in the
exception queue with the reason; CustomerResolved links it to its customer;
ChannelOrderUpdated (what a channel now says: paid, cancelled, changed) is decided in
service_layer.channel_facts; StockReleased that order-svc did not ask for (an expired
hold) sends the order to the exception queue (service_layer.reservations). Each
handler runs in the consumer's unit of work, so the order's change and the events it
causes commit together.

Routing (order_svc.routing) runs on a paid order before OrderPaid, so inventory reserves
in the chosen warehouse(s); StockReserved then announces the decision (OrderRouted), and
a refusal of a pinned warehouse re-routes. The read models routing and the pick list use
(warehouses, stock, customer profiles and identities) are fed in order_svc.read_models.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oms_contracts import Envelope, Event
from oms_contracts.events import (
    ChannelOrderUpdated,
    CustomerMerged,
    CustomerResolved,
    CustomerUpdated,
    OrderConfirmed,
    OrderReceived,
    StockLevelChanged,
    StockRejected,
    StockReleased,
    StockReserved,
    WarehouseUpdated,
)
from oms_contracts.topics import Topic
from oms_messaging import BatchHandler, Handler, UnitOfWork
from oms_servicekit.runtime import ConsumerSpec
from order_svc.adapters.repository import OrderRepository
from order_svc.credit import CreditConfig
from order_svc.domain.order import OrderState
from order_svc.publishing import publish_transitions
from order_svc.read_models import (
    customer_resolved,
    on_customer_merged,
    on_customer_updated,
    on_stock_level_changed,
    on_warehouse_updated,
    profile_at_receipt,
)
from order_svc.routing import (
    RoutingConfig,
    announce_route,
)
from order_svc.service_layer.channel_facts import make_on_channel_order_updated
from order_svc.service_layer.paid_orders import OrderFlow
from order_svc.service_layer.read_model_batches import (
    on_customers_resolved,
    on_customers_updated,
    on_stock_levels_changed,
)
from order_svc.service_layer.received_orders import (
    make_on_orders_received,
    order_details,
    receive_order,
    record_paid_check,
)
from order_svc.service_layer.refused_orders import answer_refusal, make_on_stocks_rejected
from order_svc.service_layer.reservations import on_stock_released
from order_svc.service_layer.reserved_orders import make_on_stocks_reserved
from order_svc.workflow import WorkflowConfig, advance_reserved_order

#: Order states in which the customer's data is still copied onto the order.
_CLOSED = {OrderState.SHIPPED, OrderState.DELIVERED, OrderState.CANCELLED, OrderState.REFUNDED}


def make_on_order_received(
    credit: CreditConfig,
    routing: RoutingConfig | None = None,
    workflow: WorkflowConfig | None = None,
) -> Handler:
    """The OrderReceived handler; a paid order goes to the credit check when one is set up,
    else the workflow rules hold it or route it and request its stock."""
    flow = OrderFlow(credit, routing or RoutingConfig(), workflow or WorkflowConfig())

    async def on_order_received(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, OrderReceived)
        repo = OrderRepository(uow.session)
        if await repo.exists(event.order_id):
            return  # the same order re-sent under a new event id: already created
        # A buyer known on this channel: the customer's requirements apply from receipt.
        customer_requirements = await profile_at_receipt(
            uow, event.order_id, event.channel, event.customer.platform_user_id
        )
        now = datetime.now(UTC)
        order = await receive_order(uow, event, flow, customer_requirements, now)
        await repo.add(order, order_details(event))
        await record_paid_check(uow, order, event, flow, now)

    return on_order_received


#: Without a bureau (the default): the check is recorded as skipped.
on_order_received = make_on_order_received(CreditConfig(enabled=False, budget_s=0))


def make_on_stock_reserved(
    routing: RoutingConfig | None = None, workflow: WorkflowConfig | None = None
) -> Handler:
    """The StockReserved handler: record where the stock is, reserve, let the workflow
    rules move the order on (confirmed, routed), announce the route (OrderRouted)."""
    config = routing or RoutingConfig()
    rules = workflow or WorkflowConfig()

    async def on_stock_reserved(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, StockReserved)
        repo = OrderRepository(uow.session)
        order = await repo.get_for_update(event.order_id)
        if order is None or order.state is not OrderState.PAID:
            return  # not waiting for stock (cancelled meanwhile, or answered before)
        now = datetime.now(UTC)
        routed = await announce_route(uow, order, event.lines, config, now)
        warehouses = {line.line_no: line.warehouse for line in event.lines}
        steps = await advance_reserved_order(uow, order, warehouses, rules, now)
        await publish_transitions(uow, order)
        if any(step.target is OrderState.CONFIRMED for step in steps):
            await uow.emit(
                OrderConfirmed(order_id=order.id, channel=order.channel, confirmed_at=now)
            )
        await uow.emit(routed)
        await repo.save(order)

    return on_stock_reserved


on_stock_reserved = make_on_stock_reserved()


def make_on_stock_rejected(routing: RoutingConfig | None = None) -> Handler:
    """The StockRejected handler: a pinned warehouse that lacked stock is routed around
    (OrderPaid again); any other refusal parks the order in the exception queue (a buyer
    over a SKU's cap per customer as ``customer_limit``, never re-routed)."""
    config = routing or RoutingConfig()

    async def on_stock_rejected(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, StockRejected)
        repo = OrderRepository(uow.session)
        order = await repo.get_for_update(event.order_id)
        if order is None or order.state is not OrderState.PAID:
            return
        await answer_refusal(uow, order, event, config, datetime.now(UTC))
        await repo.save(order)

    return on_stock_rejected


on_stock_rejected = make_on_stock_rejected()


async def on_customer_resolved(uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
    assert isinstance(event, CustomerResolved)
    repo = OrderRepository(uow.session)
    order = await repo.get_for_update(event.order_id)
    await customer_resolved(
        uow,
        event.order_id,
        order is not None and order.state not in _CLOSED,
        event.channel,
        event.platform_user_id,
        event.customer_id,
        event.resolved_at,
    )
    if order is None or order.customer_id == event.customer_id:
        return
    order.customer_id = event.customer_id
    await repo.save(order)


def consumer_specs(
    credit: CreditConfig | None = None,
    routing: RoutingConfig | None = None,
    workflow: WorkflowConfig | None = None,
) -> list[ConsumerSpec]:
    credit = credit or CreditConfig(enabled=False, budget_s=0)
    handlers: dict[str, Handler] = {
        OrderReceived.event_type: make_on_order_received(credit, routing, workflow),
        ChannelOrderUpdated.event_type: make_on_channel_order_updated(
            OrderFlow(credit, routing or RoutingConfig(), workflow or WorkflowConfig())
        ),
        StockReleased.event_type: on_stock_released,
        StockReserved.event_type: make_on_stock_reserved(routing, workflow),
        StockRejected.event_type: make_on_stock_rejected(routing),
        CustomerResolved.event_type: on_customer_resolved,
        CustomerUpdated.event_type: on_customer_updated,
        CustomerMerged.event_type: on_customer_merged,
        WarehouseUpdated.event_type: on_warehouse_updated,
        StockLevelChanged.event_type: on_stock_level_changed,
    }
    batch_handlers: dict[str, BatchHandler] = {
        StockRejected.event_type: make_on_stocks_rejected(routing),
        OrderReceived.event_type: make_on_orders_received(
            OrderFlow(credit, routing or RoutingConfig(), workflow or WorkflowConfig())
        ),
        StockReserved.event_type: make_on_stocks_reserved(routing, workflow),
        CustomerResolved.event_type: on_customers_resolved,
        CustomerUpdated.event_type: on_customers_updated,
        StockLevelChanged.event_type: on_stock_levels_changed,
    }
    topics = [Topic.CHANNEL_ORDERS, Topic.RESERVATIONS, Topic.CUSTOMERS, Topic.STOCK]
    return [
        ConsumerSpec(
            group_id="order-svc",
            topics=[t.value for t in topics],
            handlers=handlers,
            batch_handlers=batch_handlers,
        )
    ]
