"""The exception queue over HTTP: list, count, and resolve (an audited operator action).

Resolving needs ``orders:write`` and an identity (token subject or ``X-Operator``); who,
which action, when and the note are kept on the exception (and in
OrderExceptionResolved), the order's own change carries the operator as its actor, and
one audit row (the exception and its order's state, before and after) commits with it.
404 for an unknown exception, 409 for one already resolved or an action the order's
state does not allow; neither writes anything.

``POST /exceptions/resolve`` resolves every open exception of one cause at once (after a
credit bureau outage, all ``credit_degraded`` ones), each as the single action would and
with its own audit row, in one transaction; those the action does not fit stay open and
are listed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from oms_contracts.events import ExceptionCause
from oms_messaging import UnitOfWork
from oms_servicekit.audit import record_audit
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.exception_store import OPEN, ExceptionRepository
from order_svc.adapters.repository import OrderRepository
from order_svc.adapters.workflow_store import WorkflowStore
from order_svc.api.exception_schemas import BulkRefusal, BulkResolveIn, BulkResolveOut
from order_svc.api.roles import ORDERS_READ, OrdersWriter
from order_svc.api.routes import SettingsDep
from order_svc.api.sla_schemas import (
    CauseStats,
    ExceptionOut,
    ExceptionPage,
    ExceptionStats,
    ResolveIn,
)
from order_svc.domain.exceptions import (
    REVIEW_CAUSE,
    Action,
    Effect,
    ResolutionRefused,
    plan_resolution,
)
from order_svc.domain.order import Order, OrderState
from order_svc.exception_queue import close_exception, count_open_of_cause, open_of_cause
from order_svc.publishing import order_paid_event, publish_transitions
from order_svc.routing import RoutingConfig, routing_config
from order_svc.service_layer import cancellation
from order_svc.settings import OrderSettings
from order_svc.workflow import WorkflowConfig, continue_paid_order, workflow_config

router = APIRouter(tags=["exceptions"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown exception"},
    409: {"description": "already resolved, or the order's state does not allow the action"},
}


@router.get("/exceptions", response_model=ExceptionPage, dependencies=ORDERS_READ)
async def list_exceptions(
    runtime: RuntimeDep,
    cause: ExceptionCause | None = None,
    state: Annotated[
        Literal["open", "resolved", "all"], Query(description="open (default), resolved or all")
    ] = "open",
    channel: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ExceptionPage:
    """The queue, oldest first; by default only what is still open."""
    async with runtime.uow() as uow:
        rows, total = await ExceptionRepository(uow.session).page(
            cause=cause,
            state=None if state == "all" else state,
            channel=channel,
            limit=limit,
            offset=offset,
        )
    return ExceptionPage(
        items=[ExceptionOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/exceptions/stats", response_model=ExceptionStats, dependencies=ORDERS_READ)
async def exception_stats(runtime: RuntimeDep) -> ExceptionStats:
    """How many exceptions are open and resolved, per cause."""
    async with runtime.uow() as uow:
        rows = await ExceptionRepository(uow.session).stats()
    by_cause = [CauseStats.model_validate(r) for r in rows]
    return ExceptionStats(
        open=sum(c.open for c in by_cause),
        resolved=sum(c.resolved for c in by_cause),
        by_cause=by_cause,
    )


@router.post(
    "/exceptions/resolve",
    response_model=BulkResolveOut,
    responses={422: {"description": "an invalid field (named in the problem)"}},
)
async def resolve_exceptions_of_cause(
    body: BulkResolveIn,
    runtime: RuntimeDep,
    settings: SettingsDep,
    operator: OrdersWriter,
) -> BulkResolveOut:
    """Resolve every open exception of one cause at once (of one channel, if given; up
    to ``limit`` per request, oldest first), each as ``POST /exceptions/{id}/resolve``
    would, with its own audit row: after a credit bureau outage, say, release all
    ``credit_degraded`` exceptions. Those the action does not fit stay open and are
    listed with the reason; ``remaining`` says whether to call again."""
    action = Action(body.action)
    flow = Flow.of(settings)
    resolved: list[uuid.UUID] = []
    refused: list[BulkRefusal] = []
    async with runtime.uow() as uow:
        exceptions = ExceptionRepository(uow.session)
        orders = OrderRepository(uow.session)
        found = await open_of_cause(uow, body.cause, body.channel, body.limit)
        # Each order locked before its exception, orders in id order: no deadlock with
        # another batch or with the transitions.
        for exception_id, order_id in sorted(found, key=lambda found: str(found[1])):
            order = await orders.get_for_update(order_id)
            row = await exceptions.get(exception_id, lock=True)
            if row is None or row["state"] != OPEN:
                continue  # resolved meanwhile
            if order is None:
                refusal = "the order of this exception is unknown"
                refused.append(BulkRefusal(**_ids(row), order_state=None, detail=refusal))
                continue
            try:
                effect = plan_resolution(action, row["cause"], order.state)
            except ResolutionRefused as exc:
                refusal = str(exc)
                refused.append(
                    BulkRefusal(**_ids(row), order_state=order.state.value, detail=refusal)
                )
                continue
            await _carry_out(
                uow, order, row, effect, action, operator, body.note, flow, batch=body.cause
            )
            resolved.append(exception_id)
        remaining = await count_open_of_cause(uow, body.cause, body.channel)
        await uow.commit()
    rank = {exception_id: n for n, (exception_id, _) in enumerate(found)}
    return BulkResolveOut(
        cause=body.cause,
        action=action.value,
        channel=body.channel,
        resolved=sorted(resolved, key=rank.__getitem__),
        refused=refused,
        remaining=remaining,
    )


def _ids(row: dict[str, Any]) -> dict[str, uuid.UUID]:
    return {"exception_id": row["id"], "order_id": row["order_id"]}


@router.get(
    "/exceptions/{exception_id}",
    response_model=ExceptionOut,
    responses=ERRORS,
    dependencies=ORDERS_READ,
)
async def get_exception(exception_id: uuid.UUID, runtime: RuntimeDep) -> ExceptionOut:
    async with runtime.uow() as uow:
        row = await ExceptionRepository(uow.session).get(exception_id)
    if row is None:
        raise Problem(404, f"unknown exception {exception_id}")
    return ExceptionOut.model_validate(row)


@router.post("/exceptions/{exception_id}/resolve", response_model=ExceptionOut, responses=ERRORS)
async def resolve_exception(
    exception_id: uuid.UUID,
    body: ResolveIn,
    runtime: RuntimeDep,
    settings: SettingsDep,
    operator: OrdersWriter,
) -> ExceptionOut:
    """Retry (back to paid, through the workflow rules again, routed and its stock asked
    for), release (the order goes on as it is; for a manual review hold, the reviewer's
    approval: it resumes like a retry) or cancel (the order is cancelled and its stock
    released)."""
    action = Action(body.action)
    async with runtime.uow() as uow:
        exceptions = ExceptionRepository(uow.session)
        seen = await exceptions.get(exception_id)
        if seen is None:
            raise Problem(404, f"unknown exception {exception_id}")
        # Lock the order before the exception, as every transition does: no deadlock.
        orders = OrderRepository(uow.session)
        order = await orders.get_for_update(seen["order_id"])
        row = await exceptions.get(exception_id, lock=True)
        assert row is not None  # exceptions are never deleted
        if row["state"] != OPEN:
            raise Problem(409, f"exception {exception_id} was already resolved ({row['action']})")
        if order is None:
            raise Problem(409, f"the order {row['order_id']} of this exception is unknown")
        try:
            effect = plan_resolution(action, row["cause"], order.state)
        except ResolutionRefused as exc:
            raise Problem(
                409, str(exc), title="Action not allowed", state=order.state.value
            ) from None
        view = await _carry_out(
            uow, order, row, effect, action, operator, body.note, Flow.of(settings)
        )
        await uow.commit()
    return ExceptionOut.model_validate(view)


@dataclass(frozen=True)
class Flow:
    """What a resumed order goes through again (read once per request)."""

    workflow: WorkflowConfig
    routing: RoutingConfig

    @classmethod
    def of(cls, settings: OrderSettings) -> Flow:
        return cls(workflow_config(settings), routing_config(settings))


async def _carry_out(
    uow: UnitOfWork,
    order: Order,
    row: dict[str, Any],
    effect: Effect,
    action: Action,
    operator: str,
    note: str | None,
    flow: Flow,
    *,
    batch: str | None = None,
) -> dict[str, Any]:
    """Resolve the locked open exception ``row`` of the locked ``order`` with ``action``
    (its ``effect`` planned already), with its audit row; the exception as it is now."""
    exceptions = ExceptionRepository(uow.session)
    orders = OrderRepository(uow.session)
    now = datetime.now(UTC)
    order_state_before = order.state
    await close_exception(uow, row, action=action, actor=operator, note=note, at=now)
    why = f"exception {row['cause']} resolved: {action.value}" + (f" ({note})" if note else "")
    if effect is Effect.RESUME:
        if row["cause"] == REVIEW_CAUSE:
            # The reviewer approved what the hold rule flagged: that rule does not
            # hold this order again (the others still apply).
            store = WorkflowStore(uow.session)
            rule = await store.holding_rule(order.id)
            if rule is not None:
                await store.approve(order.id, rule, operator, now, row["id"])
        order.move_to(OrderState.PAID, at=now, actor=operator, reason=why)
        # Through the rules again, routed afresh (stock and warehouses may have
        # changed); a hold or an impossible route parks it again, under a new exception.
        reserve = await continue_paid_order(uow, order, flow.workflow, flow.routing, now)
        await publish_transitions(uow, order)
        if reserve:
            await uow.emit(order_paid_event(order, now))
    elif effect is Effect.CANCEL:
        await cancellation.cancel_order(uow, order, why, operator, now)
        await publish_transitions(uow, order)  # also closes the order's other exceptions
    await orders.save(order)
    view = await exceptions.get(row["id"])
    assert view is not None
    after = {
        "state": view["state"],
        "action": action.value,
        "note": note,
        "order_state": order.state.value,
    }
    await record_audit(
        uow.session,
        actor=operator,
        action="resolve",
        entity="exception",
        entity_id=row["id"],
        before={
            "state": row["state"],
            "cause": row["cause"],
            "order_id": row["order_id"],
            "order_state": order_state_before.value,
        },
        after=after if batch is None else {**after, "batch": batch},
    )
    return {**view, "order_state": order.state.value}
