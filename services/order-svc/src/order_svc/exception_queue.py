"""Opening and closing exceptions, each with its contract event, in the caller's unit of work.

:func:`track_exceptions` is called for every transition where transitions are
published (``publishing.publish_transitions``), so every move into the ``exception``
state opens a row with its classified cause without its caller knowing about the
queue; a degraded credit check opens an advisory ``credit_degraded`` one; a cancelled
order closes whatever it still had open.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select

from oms_contracts.events import ExceptionCause, OrderExceptionRaised, OrderExceptionResolved
from oms_messaging import UnitOfWork
from order_svc.adapters.exception_store import OPEN, ExceptionRepository
from order_svc.adapters.tables import order_exceptions
from order_svc.domain.exceptions import Action, classify
from order_svc.domain.order import Order, OrderState, Transition

S = OrderState


async def open_exception(
    uow: UnitOfWork,
    *,
    order_id: uuid.UUID,
    channel: str,
    cause: str,
    detail: str | None,
    at: datetime,
) -> uuid.UUID | None:
    """Open an exception and emit OrderExceptionRaised; None if one is open for the cause."""
    exception_id = uuid.uuid4()
    opened = await ExceptionRepository(uow.session).open(
        exception_id=exception_id,
        order_id=order_id,
        channel=channel,
        cause=cause,
        detail=detail,
        at=at,
    )
    if not opened:
        return None
    await uow.emit(
        OrderExceptionRaised(
            exception_id=exception_id,
            order_id=order_id,
            channel=channel,
            cause=cast(ExceptionCause, cause),
            detail=detail,
            raised_at=at,
        )
    )
    return exception_id


async def close_exception(
    uow: UnitOfWork,
    row: dict[str, Any],
    *,
    action: Action,
    actor: str,
    note: str | None,
    at: datetime,
) -> bool:
    """Resolve an open exception and emit OrderExceptionResolved; False if already closed."""
    closed = await ExceptionRepository(uow.session).resolve(
        row["id"], action=action.value, actor=actor, note=note, at=at
    )
    if closed:
        await uow.emit(
            OrderExceptionResolved(
                exception_id=row["id"],
                order_id=row["order_id"],
                channel=row["channel"],
                cause=cast(ExceptionCause, row["cause"]),
                action=action.value,
                actor=actor,
                note=note,
                resolved_at=at,
            )
        )
    return closed


async def track_exceptions(uow: UnitOfWork, order: Order, transition: Transition) -> None:
    """Keep the queue in step with one transition of ``order``."""
    t = transition
    if t.to_state is S.EXCEPTION:
        cause, detail = classify(t.reason)
        await open_exception(
            uow, order_id=order.id, channel=order.channel, cause=cause, detail=detail, at=t.at
        )
    elif t.from_state is S.CREDIT_CHECK and t.to_state is S.PAID and order.credit_degraded:
        await open_exception(
            uow,
            order_id=order.id,
            channel=order.channel,
            cause="credit_degraded",
            detail=t.reason,
            at=t.at,
        )
    elif t.to_state is S.CANCELLED:
        for row in await ExceptionRepository(uow.session).open_for_order(order.id):
            await close_exception(
                uow, row, action=Action.CANCEL, actor=t.actor, note=t.reason, at=t.at
            )


async def open_of_cause(
    uow: UnitOfWork, cause: str, channel: str | None, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Up to ``limit`` open exceptions of ``cause`` (of ``channel``), oldest first, as
    (exception id, order id); not locked (the caller locks each order, then its row)."""
    query = (
        select(order_exceptions.c.id, order_exceptions.c.order_id)
        .where(order_exceptions.c.cause == cause, order_exceptions.c.state == OPEN)
        .order_by(order_exceptions.c.opened_at, order_exceptions.c.id)
        .limit(limit)
    )
    if channel is not None:
        query = query.where(order_exceptions.c.channel == channel)
    return [(r.id, r.order_id) for r in await uow.session.execute(query)]


async def count_open_of_cause(uow: UnitOfWork, cause: str, channel: str | None) -> int:
    query = (
        select(func.count())
        .select_from(order_exceptions)
        .where(order_exceptions.c.cause == cause, order_exceptions.c.state == OPEN)
    )
    if channel is not None:
        query = query.where(order_exceptions.c.channel == channel)
    return int((await uow.session.execute(query)).scalar_one())
