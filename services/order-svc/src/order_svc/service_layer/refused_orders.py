"""Inventory refused a paid order's stock (``StockRejected``): one answer, or a run of them
set-based (a sold-out flash sale answers hundreds at once).

:func:`answer_refusal` is the one domain path: a pinned warehouse that lacked stock for
every line is routed around (``OrderPaid`` again, the refused warehouses excluded); any
other refusal parks the order in the exception queue with the reason (a buyer over a
SKU's cap per customer as ``customer_limit``, never re-routed). The run loads and locks
its orders in one statement, reads what re-routing needs once (``routing.prime_rerouting``)
and saves the orders in one statement per table.
"""

from __future__ import annotations

from datetime import UTC, datetime

from oms_contracts import Envelope, Event
from oms_contracts.events import StockRejected
from oms_messaging import BatchHandler, UnitOfWork
from order_svc.adapters.repository import OrderRepository
from order_svc.domain.order import Order, OrderState
from order_svc.domain.stock_refusal import refusal_reason
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.routing import RoutingConfig, prime_rerouting, reroute_after_refusal


def rerouted_on(event: StockRejected) -> list[int]:
    """The lines a re-route is tried for: all of them, when every line lacked stock."""
    short = [line.line_no for line in event.lines if line.reason == "insufficient"]
    return short if len(short) == len(event.lines) else []


async def answer_refusal(
    uow: UnitOfWork, order: Order, event: StockRejected, config: RoutingConfig, now: datetime
) -> None:
    """Route a paid order around the refusal, or park it with the reason; the caller
    saves the order."""
    short = rerouted_on(event)
    if short and await reroute_after_refusal(uow, order, short, config, now):
        await publish_transitions(uow, order)
        if order.state is OrderState.PAID:
            await uow.emit(order_paid_event(order, now))
        return
    order.raise_exception(refusal_reason(event.lines), now)
    await publish_transitions(uow, order)


def make_on_stocks_rejected(routing: RoutingConfig | None = None) -> BatchHandler:
    config = routing or RoutingConfig()

    async def on_stocks_rejected(uow: UnitOfWork, items: list[tuple[Envelope, Event]]) -> None:
        answers: list[tuple[Envelope, StockRejected]] = []
        for envelope, event in items:
            assert isinstance(event, StockRejected)
            answers.append((envelope, event))
        repo = OrderRepository(uow.session)
        orders = await repo.get_many_for_update(sorted({e.order_id for _, e in answers}))
        waiting = {i for i, order in orders.items() if order.state is OrderState.PAID}
        await prime_rerouting(
            uow,
            [
                orders[i]
                for i in sorted({e.order_id for _, e in answers if rerouted_on(e)} & waiting)
            ],
        )
        now = datetime.now(UTC)
        changed: dict[object, Order] = {}
        for envelope, event in answers:
            order = orders.get(event.order_id)
            if order is None or order.state is not OrderState.PAID:
                continue  # answered before (or a second answer in this run)
            uow.caused_by(envelope)
            await answer_refusal(uow, order, event, config, now)
            changed[order.id] = order
        uow.drop_primed()
        await repo.save_many(list(changed.values()))

    return on_stocks_rejected
