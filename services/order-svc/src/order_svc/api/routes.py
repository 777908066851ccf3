"""order-svc HTTP API: read orders and their history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.repository import OrderRepository
from order_svc.api.schemas import OrderOut, OrderPage, OrderSummary
from order_svc.domain.order import OrderState

router = APIRouter(tags=["orders"])


@router.get(
    "/orders/{order_id}", response_model=OrderOut, responses={404: {"description": "unknown order"}}
)
async def get_order(order_id: uuid.UUID, runtime: RuntimeDep) -> OrderOut:
    """The order, its lines, its state and every state change with its time."""
    async with runtime.uow() as uow:
        view = await OrderRepository(uow.session).view(order_id)
    if view is None:
        raise Problem(404, f"unknown order {order_id}")
    return OrderOut.model_validate(view)


@router.get("/orders", response_model=OrderPage)
async def list_orders(
    runtime: RuntimeDep,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[OrderState | None, Query(description="the order state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OrderPage:
    async with runtime.uow() as uow:
        rows, total = await OrderRepository(uow.session).list(
            channel=channel, state=status.value if status else None, limit=limit, offset=offset
        )
    return OrderPage(
        items=[OrderSummary.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
