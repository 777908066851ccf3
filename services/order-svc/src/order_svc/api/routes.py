"""order-svc HTTP API: orders and their history, and the credit bureau's callback."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import ValidationError

from oms_servicekit.http import RuntimeDep
from oms_servicekit.personal_data import mask_address, scrub
from oms_servicekit.problems import Problem
from order_svc.adapters.repository import OrderRepository
from order_svc.api.roles import ORDERS_READ, SeesPersonalData
from order_svc.api.schemas import (
    CreditCallbackIn,
    CreditCallbackOut,
    OrderOut,
    OrderPage,
    OrderSummary,
)
from order_svc.credit import SIGNATURE_HEADER, record_callback, verify_callback
from order_svc.domain.order import OrderState
from order_svc.routing import routing_config
from order_svc.settings import OrderSettings
from order_svc.workflow import workflow_config

router = APIRouter(tags=["orders"])


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses={404: {"description": "unknown order"}},
)
async def get_order(order_id: uuid.UUID, runtime: RuntimeDep, pii: SeesPersonalData) -> OrderOut:
    """The order, its lines, its state and every state change with its time; the
    shipping address and notes masked unless the caller holds ``customers:pii``."""
    async with runtime.uow() as uow:
        view = await OrderRepository(uow.session).view(order_id)
    if view is None:
        raise Problem(404, f"unknown order {order_id}")
    order = OrderOut.model_validate(view)
    if pii:
        return order
    return order.model_copy(
        update={
            "shipping_address": mask_address(order.shipping_address) or {},
            "notes": scrub(order.notes),
        }
    )


@router.get("/orders", response_model=OrderPage, dependencies=ORDERS_READ)
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


async def get_settings(request: Request) -> OrderSettings:
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, OrderSettings) else OrderSettings()


SettingsDep = Annotated[OrderSettings, Depends(get_settings)]


@router.post(
    "/credit/callback",
    response_model=CreditCallbackOut,
    tags=["credit"],
    responses={401: {"description": "bad or missing signature"}, 404: {"description": "unknown"}},
)
async def credit_callback(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    x_credit_signature: Annotated[str | None, Header()] = None,
) -> CreditCallbackOut:
    """The bureau's late answer to a check it accepted with 202.

    Signed with ``X-Credit-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``. An
    answer within the budget moves the order on; one after it is recorded only.
    """
    raw = await request.body()
    if len(raw) > 64_000:
        raise Problem(413, "callback too large")
    if not verify_callback(settings.credit_callback_secret, raw, x_credit_signature):
        raise Problem(401, "invalid callback signature", field=SIGNATURE_HEADER)
    try:
        body = CreditCallbackIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Problem(422, "invalid callback", field=".".join(map(str, first["loc"]))) from None
    async with runtime.uow() as uow:
        result = await record_callback(
            uow,
            body.order_id,
            body.decision,
            body.reason,
            routing_config(settings),
            workflow_config(settings),
        )
        if result == "unknown":
            raise Problem(404, f"no credit check for order {body.order_id}")
        await uow.commit()
    return CreditCallbackOut(order_id=body.order_id, status=result)
