"""``GET /reservations``: the stock inventory holds for orders, for other services to read.

order-svc compares it with its orders (its consistency check): services share contracts,
never tables, so this read is the contract. Open like the other inventory reads (see
:mod:`inventory_svc.api.roles`): it names orders, SKUs and quantities, no personal data
(the buyer key a cap per customer counts by is not shown).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from inventory_svc.adapters.reservation_reads import HeldOrder, open_reservations
from oms_servicekit.http import RuntimeDep
from oms_servicekit.problems import Problem

router = APIRouter()

#: A page large enough that 50,000 orders take 25 requests.
MAX_LIMIT = 5000


class ReservedLineOut(BaseModel):
    line_no: int
    sku: str
    qty: int
    warehouse: str


class ReservationOut(BaseModel):
    """One order's open reservation lines."""

    order_id: uuid.UUID
    channel: str
    lines: list[ReservedLineOut]
    #: When the first line was reserved.
    reserved_at: datetime
    #: When an open line last changed (a reader's grace period starts here).
    changed_at: datetime
    #: When the sweeper releases the reservation unless the order is confirmed; null once
    #: it is (a confirmed order's stock is held until it ships or is cancelled).
    expires_at: datetime | None


class ReservationPage(BaseModel):
    items: list[ReservationOut]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None = Field(default=None)


def _encode_cursor(order_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"order:{order_id}".encode()).decode()


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("order:"):
            raise ValueError(text)
        return uuid.UUID(text[len("order:") :])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(422, "invalid cursor", field="cursor") from None


def _out(held: HeldOrder) -> ReservationOut:
    return ReservationOut(
        order_id=held.order_id,
        channel=held.channel,
        lines=[
            ReservedLineOut(line_no=ln.line_no, sku=ln.sku, qty=ln.qty, warehouse=ln.warehouse)
            for ln in held.lines
        ],
        reserved_at=held.reserved_at,
        changed_at=held.changed_at,
        expires_at=held.expires_at,
    )


@router.get("/reservations", response_model=ReservationPage, tags=["stock"])
async def list_reservations(
    runtime: RuntimeDep,
    status: Annotated[
        Literal["open"],
        Query(description="Only open reservations are served (closed ones are history)."),
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Orders per page.")] = 500,
    cursor: str | None = None,
) -> ReservationPage:
    """Orders holding open reservations, by order id, each with its open lines; paged by
    order id (``next_cursor``), so an order's lines never straddle two pages."""
    after = _decode_cursor(cursor) if cursor else None
    async with runtime.uow() as uow:
        page = await open_reservations(uow.session, after=after, limit=limit)
    return ReservationPage(
        items=[_out(h) for h in page.orders],
        next_cursor=_encode_cursor(page.last) if page.last else None,
    )
