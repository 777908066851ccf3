"""A run of StockReserved answers applied set-based (``oms_messaging.BatchHandler``).

One by one, a reserved order costs about a dozen statements (load and lock the order and
its lines, its routing decision, its workflow context, the route marked, the order, its
lines and its transitions saved). Here a run of hundreds loads the orders, the routing
decisions and the workflow contexts in one statement each, decides every order in memory
with the same domain code as ``handlers.make_on_stock_reserved`` (the reference, which an
equivalence test compares against), and writes the routes, the orders, the lines and the
transitions in one statement each. The events are emitted per order, in order, each
naming the answer that caused it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oms_contracts import Envelope, Event
from oms_contracts.events import OrderConfirmed, StockReserved
from oms_messaging import BatchHandler, UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.routing_repository import RoutingRepository
from order_svc.adapters.workflow_store import WorkflowStore
from order_svc.domain.order import Order, OrderState
from order_svc.publishing import publish_transitions
from order_svc.routing import RoutingConfig, routed_event, shipments_json
from order_svc.workflow import WorkflowConfig, active_rules, advance_reserved, reserving_actor


def make_on_stocks_reserved(
    routing: RoutingConfig | None = None, workflow: WorkflowConfig | None = None
) -> BatchHandler:
    rules = workflow or WorkflowConfig()
    del routing  # routing's choices are in the stored decision; the answer is the truth

    async def on_stocks_reserved(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
        answers: list[tuple[Envelope, StockReserved]] = []
        for envelope, event in items:
            assert isinstance(event, StockReserved)
            answers.append((envelope, event))
        ids = sorted({event.order_id for _, event in answers})
        repo = OrderRepository(uow.session)
        orders = await repo.get_many_for_update(ids)
        waiting = [i for i in ids if i in orders and orders[i].state is OrderState.PAID]
        if not waiting:
            return  # none waits for stock (cancelled meanwhile, or answered before)
        await uow.flush()  # decisions of this transaction are written before they are read
        routes = await RoutingRepository(uow.session).routes_of(waiting)
        contexts = await WorkflowStore(uow.session).contexts(waiting)
        active = await active_rules(uow, rules)
        now = datetime.now(UTC)
        routed: list[tuple[Order, list[dict[str, Any]]]] = []
        for envelope, event in answers:
            order = orders.get(event.order_id)
            if order is None or order.state is not OrderState.PAID:
                continue  # not waiting (or a second answer in this run: the first counted)
            uow.caused_by(envelope)
            announcement = routed_event(order, event.lines, routes.get(order.id, {}), now)
            order.reserve(
                {line.line_no: line.warehouse for line in event.lines},
                now,
                actor=reserving_actor(active),
            )
            steps = advance_reserved(order, active, contexts[order.id], rules, now)
            await publish_transitions(uow, order)
            if any(step.target is OrderState.CONFIRMED for step in steps):
                await uow.emit(
                    OrderConfirmed(order_id=order.id, channel=order.channel, confirmed_at=now)
                )
            await uow.emit(announcement)
            routed.append((order, shipments_json(announcement)))
        await RoutingRepository(uow.session).mark_routed_many(
            [(order.id, shipments) for order, shipments in routed], now
        )
        await repo.save_many([order for order, _ in routed])

    return on_stocks_reserved
