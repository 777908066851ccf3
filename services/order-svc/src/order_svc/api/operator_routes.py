"""Orders placed directly (front ends) and the operator actions on an order.

``POST /orders`` honours ``Idempotency-Key``: the same key with the same body answers
what the first request answered and creates nothing; the same key with another body is
refused. Placing needs ``orders:write`` in jwt mode; actions (cancel, pick, ship, deliver,
refund) need ``orders:write`` and an identity (token subject or ``X-Operator``), who is
recorded as the transition's actor; an action the order's state does not allow answers
409 and changes nothing; repeating an action that already happened changes nothing.
Every applied placement or action writes one audit row (the order's state before and
after, and what the action set) in its own transaction; a replay or a repeat writes none.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from oms_contracts import make_envelope
from oms_contracts.events import (
    OrderCancelled,
    OrderDelivered,
    OrderReceived,
    OrderRefunded,
    OrderShipped,
    ShipmentLine,
)
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.tables import idempotency_keys, orders
from order_svc.api.roles import OrderPlacer, OrdersWriter
from order_svc.api.routes import SettingsDep
from order_svc.api.schemas import (
    CancelIn,
    NewOrderIn,
    OrderOut,
    RefundIn,
    ShipIn,
)
from order_svc.credit import credit_config
from order_svc.domain.order import IllegalTransition, Order, OrderState
from order_svc.handlers import make_on_order_received
from order_svc.publishing import publish_transitions
from order_svc.routing import routing_config
from order_svc.service_layer import cancellation
from order_svc.workflow import workflow_config

router = APIRouter(tags=["operator"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the order's state does not allow this"}
}


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={409: {"description": "duplicate order"}, 422: {"description": "invalid"}},
)
async def place_order(
    body: NewOrderIn,
    runtime: RuntimeDep,
    settings: SettingsDep,
    actor: OrderPlacer,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Place an order directly; it then runs through the same flow as channel orders."""
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    now = datetime.now(UTC)
    order_id = uuid.uuid4()
    async with runtime.uow() as uow:
        if idempotency_key is not None:
            claimed = (
                await uow.session.execute(
                    pg_insert(idempotency_keys)
                    .values(
                        key=idempotency_key,
                        request_hash=request_hash,
                        order_id=order_id,
                        status_code=0,
                        response={},
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(idempotency_keys.c.key)
                )
            ).first()
            if claimed is None:  # seen before (a concurrent first request has committed)
                return await _replay(uow, idempotency_key, request_hash)
        repo = OrderRepository(uow.session)
        channel_order_id = body.channel_order_id or f"API-{order_id.hex[:12].upper()}"
        duplicate = await uow.session.execute(
            select(orders.c.id).where(
                orders.c.channel == body.channel,
                orders.c.channel_order_id == channel_order_id,
            )
        )
        if duplicate.first() is not None:
            raise Problem(
                409, f"order {channel_order_id} of {body.channel} exists", field="channel_order_id"
            )
        event = OrderReceived(
            order_id=order_id,
            channel=body.channel,
            channel_order_id=channel_order_id,
            customer=body.customer,
            lines=body.lines,
            currency=body.currency,
            paid=body.paid,
            paid_at=body.paid_at or (now if body.paid else None),
            shipping_address=body.shipping_address,
            delivery_requirements=body.delivery_requirements,
            notes=body.notes,
            priority=body.priority,
            received_at=now,
        )
        handler = make_on_order_received(
            credit_config(settings), routing_config(settings), workflow_config(settings)
        )
        await handler(uow, make_envelope(event, producer="order-svc"), event)
        await uow.flush()  # the answer shows the clocks just started
        view = await repo.view(order_id)
        assert view is not None  # placed just now, in this transaction
        await record_audit(
            uow.session,
            actor=actor,
            action="place",
            entity="order",
            entity_id=order_id,
            after={
                "channel": body.channel,
                "channel_order_id": channel_order_id,
                "state": view["state"],
                "currency": body.currency,
                "total": view["total"],
                "lines": len(body.lines),
            },
        )
        content = jsonable_encoder(OrderOut.model_validate(view))
        if idempotency_key is not None:
            await uow.session.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.key == idempotency_key)
                .values(status_code=201, response=content)
            )
        await uow.commit()
    return JSONResponse(content, status_code=201)


async def _replay(uow: UnitOfWork, key: str, request_hash: str) -> JSONResponse:
    row = (
        await uow.session.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
    ).one()
    if row.request_hash != request_hash:
        raise Problem(
            422,
            "Idempotency-Key was already used with a different body",
            field="Idempotency-Key",
        )
    return JSONResponse(row.response, status_code=row.status_code)


Action = Callable[[UnitOfWork, Order, datetime], Awaitable[bool]]


async def _act(
    runtime: RuntimeDep,
    order_id: uuid.UUID,
    action: Action,
    *,
    name: str,
    operator: str,
    details: dict[str, Any] | None = None,
) -> OrderOut:
    """Lock the order, apply ``action`` (False: already done), store, audit it as
    ``name`` by ``operator`` (state before/after plus ``details``), answer the order."""
    async with runtime.uow() as uow:
        repo = OrderRepository(uow.session)
        order = await repo.get_for_update(order_id)
        if order is None:
            raise Problem(404, f"unknown order {order_id}")
        state_before = order.state
        try:
            changed = await action(uow, order, datetime.now(UTC))
        except IllegalTransition as exc:
            raise Problem(
                409,
                str(exc),
                title="Illegal transition",
                state=exc.from_state.value,
                target=exc.to_state.value,
            ) from None
        if changed:
            await publish_transitions(uow, order)
            await repo.save(order)
        await uow.flush()  # the answer shows the clocks just stopped
        view = await repo.view(order_id)
        assert view is not None  # locked above; orders are never deleted
        if changed:
            await record_audit(
                uow.session,
                actor=operator,
                action=name,
                entity="order",
                entity_id=order_id,
                before={"state": state_before.value},
                after={"state": view["state"], **(details or {})},
            )
        await uow.commit()
    return OrderOut.model_validate(view)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut, responses=CONFLICT)
async def cancel_order(
    order_id: uuid.UUID, body: CancelIn, runtime: RuntimeDep, operator: OrdersWriter
) -> OrderOut:
    """Cancel until the parcel leaves; inventory releases any stock held (OrderCancelled)."""

    async def action(uow: UnitOfWork, order: Order, now: datetime) -> bool:
        return await cancellation.cancel_order(uow, order, body.reason, operator, now)

    return await _act(
        runtime, order_id, action, name="cancel", operator=operator, details={"reason": body.reason}
    )


@router.post("/orders/{order_id}/pick", response_model=OrderOut, responses=CONFLICT)
async def start_picking(
    order_id: uuid.UUID, runtime: RuntimeDep, operator: OrdersWriter
) -> OrderOut:
    """Hand a confirmed order to its warehouse(s) for picking."""

    async def action(uow: UnitOfWork, order: Order, now: datetime) -> bool:
        return order.start_picking(operator, now)

    return await _act(runtime, order_id, action, name="pick", operator=operator)


@router.post("/orders/{order_id}/ship", response_model=OrderOut, responses=CONFLICT)
async def ship_order(
    order_id: uuid.UUID, body: ShipIn, runtime: RuntimeDep, operator: OrdersWriter
) -> OrderOut:
    """The parcel(s) left with a carrier: OrderShipped with every line and its warehouse."""

    async def action(uow: UnitOfWork, order: Order, now: datetime) -> bool:
        if order.state is OrderState.PICKING and any(ln.warehouse is None for ln in order.lines):
            raise Problem(409, "a line has no warehouse; the order cannot ship")
        if not order.ship(body.carrier, body.tracking_number, operator, now):
            return False
        await uow.emit(
            OrderShipped(
                order_id=order.id,
                channel=order.channel,
                carrier=body.carrier,
                tracking_number=body.tracking_number,
                lines=[
                    ShipmentLine(
                        line_no=ln.line_no, sku=ln.sku, qty=ln.qty, warehouse=ln.warehouse or ""
                    )
                    for ln in order.lines
                ],
                shipped_at=now,
            )
        )
        await OrderRepository(uow.session).set_details(
            order.id, carrier=body.carrier, tracking_number=body.tracking_number, shipped_at=now
        )
        return True

    details = {"carrier": body.carrier, "tracking_number": body.tracking_number}
    return await _act(runtime, order_id, action, name="ship", operator=operator, details=details)


@router.post("/orders/{order_id}/deliver", response_model=OrderOut, responses=CONFLICT)
async def deliver_order(
    order_id: uuid.UUID, runtime: RuntimeDep, operator: OrdersWriter
) -> OrderOut:
    async def action(uow: UnitOfWork, order: Order, now: datetime) -> bool:
        if not order.deliver(operator, now):
            return False
        await uow.emit(OrderDelivered(order_id=order.id, channel=order.channel, delivered_at=now))
        await OrderRepository(uow.session).set_details(order.id, delivered_at=now)
        return True

    return await _act(runtime, order_id, action, name="deliver", operator=operator)


@router.post("/orders/{order_id}/refund", response_model=OrderOut, responses=CONFLICT)
async def refund_order(
    order_id: uuid.UUID, body: RefundIn, runtime: RuntimeDep, operator: OrdersWriter
) -> OrderOut:
    """Refund a paid (not yet reserved), cancelled or delivered order.

    A refund before shipment also emits OrderCancelled, so stock held for it is released.
    """

    async def action(uow: UnitOfWork, order: Order, now: datetime) -> bool:
        before = order.state
        if not order.refund(body.reason, operator, now):
            return False
        if before is OrderState.PAID:
            await uow.emit(
                OrderCancelled(
                    order_id=order.id,
                    channel=order.channel,
                    reason=f"refunded: {body.reason}",
                    actor=operator,
                    cancelled_at=now,
                )
            )
        await uow.emit(
            OrderRefunded(
                order_id=order.id,
                channel=order.channel,
                amount=order.total,
                currency=order.currency,
                reason=body.reason,
                actor=operator,
                refunded_at=now,
            )
        )
        await OrderRepository(uow.session).set_details(
            order.id, refunded_at=now, refund_reason=body.reason
        )
        return True

    details = {"reason": body.reason}
    return await _act(runtime, order_id, action, name="refund", operator=operator, details=details)
