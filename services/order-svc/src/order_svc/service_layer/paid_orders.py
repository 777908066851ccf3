"""A paid order's way to its stock: the credit check where a bureau is set up and the
credit policy asks for one, else the workflow rules hold it for review or route it and
ask inventory for the stock.

One path for orders paid on arrival and orders whose payment the channel reports later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from oms_messaging import UnitOfWork
from order_svc.credit import CHECK_REQUIRED, CreditConfig
from order_svc.domain.order import Order, OrderState
from order_svc.routing import RoutingConfig
from order_svc.workflow import WorkflowConfig, continue_paid_order


@dataclass(frozen=True)
class OrderFlow:
    """The configuration a paid order's way depends on."""

    credit: CreditConfig = field(default_factory=lambda: CreditConfig(enabled=False, budget_s=0))
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)


async def decide_paid_order(
    uow: UnitOfWork,
    order: Order,
    flow: OrderFlow,
    now: datetime,
    *,
    region: str | None = None,
    requirements: list[str] | None = None,
    payment_terms: str | None = None,
) -> bool:
    """``order`` was just paid: start its credit check where the credit policy asks for
    one (order_svc.domain.credit_policy: its channel, its ``payment_terms`` - None is
    prepaid - or its amount), or let the rules hold or route it.

    True when the caller must ask for the stock (emit OrderPaid after publishing the
    transitions); with a credit check the worker does that once the bureau answers.
    """
    if flow.credit.reason(order, payment_terms) is not None:
        order.start_credit_check(now)  # the worker asks the bureau, then emits OrderPaid
        return False
    return order.state is OrderState.PAID and await continue_paid_order(
        uow, order, flow.workflow, flow.routing, now, region=region, requirements=requirements
    )


def credit_request(order: Order, customer: dict[str, Any] | None) -> dict[str, Any]:
    """What the bureau is asked about an order (JSON, stored with the check).

    Called once the order's way is decided: whether it waits for the check rides along
    for ``record_credit_check``, which takes it off before storing the request.
    """
    return {
        "order_id": str(order.id),
        "channel": order.channel,
        "amount": str(order.total),
        "currency": order.currency,
        "customer": customer or {},
        CHECK_REQUIRED: order.state is OrderState.CREDIT_CHECK,
    }
