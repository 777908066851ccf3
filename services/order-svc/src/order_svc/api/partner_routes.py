"""A sales channel's own orders over HTTP, for its partner token (issue: security).

``GET /channels/{channel}/orders`` pages the channel's orders newest first;
``GET /channels/{channel}/orders/{channel_order_id}`` finds one by the channel's own id.
A partner token (``channel`` claim) reaches only its own channel: every other one is 404,
the same answer as for what does not exist. Operators read any channel with
``orders:read``. See :mod:`order_svc.api.roles`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem
from order_svc.adapters.partner_reads import PartnerOrderReads
from order_svc.api.partner_schemas import PartnerOrderOut, PartnerOrderPage
from order_svc.api.roles import CHANNEL_LIST_READ, CHANNEL_ORDER_READ, NO_SUCH_ORDER
from order_svc.domain.order import OrderState

router = APIRouter(tags=["partners"])

ChannelPath = Annotated[str, Path(min_length=1, max_length=64)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    403: {"description": "an operator token without orders:read"},
    404: {"description": "no such channel or order (or not the partner's own)"},
}


@router.get(
    "/channels/{channel}/orders",
    response_model=PartnerOrderPage,
    responses=NOT_FOUND,
    dependencies=CHANNEL_LIST_READ,
)
async def list_channel_orders(
    channel: ChannelPath,
    runtime: RuntimeDep,
    state: Annotated[OrderState | None, Query(description="only orders in this state")] = None,
    updated_since: Annotated[
        datetime | None, Query(description="only orders changed at or after this time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PartnerOrderPage:
    """The channel's orders, newest first (``offset`` for the next page)."""
    async with runtime.uow() as uow:
        rows, total = await PartnerOrderReads(uow.session).page(
            channel,
            state=state.value if state else None,
            updated_since=updated_since,
            limit=limit,
            offset=offset,
        )
    return PartnerOrderPage(
        items=[PartnerOrderOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/channels/{channel}/orders/{channel_order_id}",
    response_model=PartnerOrderOut,
    responses=NOT_FOUND,
    dependencies=CHANNEL_ORDER_READ,
)
async def get_channel_order(
    channel: ChannelPath,
    channel_order_id: Annotated[str, Path(min_length=1, max_length=128)],
    runtime: RuntimeDep,
) -> PartnerOrderOut:
    """One of the channel's orders, by the id the channel gave it."""
    async with runtime.uow() as uow:
        row = await PartnerOrderReads(uow.session).one(channel, channel_order_id)
    if row is None:
        raise Problem(404, NO_SUCH_ORDER)
    return PartnerOrderOut.model_validate(row)
