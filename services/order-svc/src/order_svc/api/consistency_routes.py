"""``GET /consistency``: do the orders and inventory's stock reservations agree, now?

order-svc owns the order life cycle, so it owns the check: it reads what inventory-svc
holds (its ``GET /reservations``) and compares it with its orders (see
``order_svc.domain.consistency`` for the rules). ``orders:read`` in jwt mode, like the
other reads of orders.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.inventory_client import InventoryUnavailable
from order_svc.api.roles import ORDERS_READ
from order_svc.service_layer.consistency import ConsistencyCheck
from order_svc.settings import OrderSettings

router = APIRouter()

#: A day: beyond it a "grace period" hides real disagreements rather than in-flight work.
MAX_GRACE_S = 86400.0


class DisagreementOut(BaseModel):
    order_id: uuid.UUID
    #: The order's state in order-svc (null: order-svc does not know the order).
    state: str | None
    kind: str
    detail: str


class ConsistencyOut(BaseModel):
    checked_at: datetime
    orders_checked: int
    reservations_checked: int
    disagreements: list[DisagreementOut]


def consistency_check(request: Request) -> ConsistencyCheck:
    """The app's check (set by the composition root), else one from its settings."""
    check = getattr(request.app.state, "consistency", None)
    if isinstance(check, ConsistencyCheck):
        return check
    settings = getattr(request.app.state, "settings", None)
    check = ConsistencyCheck.from_settings(settings or OrderSettings())
    request.app.state.consistency = check
    return check


@router.get(
    "/consistency",
    response_model=ConsistencyOut,
    dependencies=ORDERS_READ,
    tags=["consistency"],
    responses={503: {"description": "inventory-svc could not be read"}},
)
async def check_consistency(
    request: Request,
    runtime: RuntimeDep,
    grace_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_GRACE_S,
            description="Ignore orders and reservations changed less than this many seconds "
            "ago (in flight); default: the CONSISTENCY_GRACE_S setting (30 s).",
        ),
    ] = None,
) -> ConsistencyOut:
    """Compare order states with the stock inventory holds, now, and list every
    disagreement (empty: they agree)."""
    try:
        report = await consistency_check(request).run(runtime.uow, grace_s=grace_s)
    except InventoryUnavailable as exc:
        raise Problem(503, f"inventory-svc could not be read: {exc}") from None
    return ConsistencyOut(
        checked_at=report.checked_at,
        orders_checked=report.orders_checked,
        reservations_checked=report.reservations_checked,
        disagreements=[
            DisagreementOut(order_id=d.order_id, state=d.state, kind=d.kind.value, detail=d.detail)
            for d in report.disagreements
        ],
    )
